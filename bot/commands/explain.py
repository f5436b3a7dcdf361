"""`explain`: why a rule fired or stayed quiet on one session."""

from __future__ import annotations

import sys

from bot.commands.common import build_app, parse_date, print_json
from bot.render.explain import explain_lines


def run(args) -> int:
    app = build_app(args)
    result = app.explain(args.rule, parse_date(args.date, "--date"))
    if args.json:
        print_json(result.to_json(), args.pretty)
        return 0
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    print("\n".join(explain_lines(result)))
    return 0
