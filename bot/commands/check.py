"""`check`: every rule as of one session, rendered as text or JSON."""

from __future__ import annotations

import sys

from bot.commands.common import build_app, parse_date, print_json
from bot.errors import StoreError
from bot.render.check import check_lines


def run(args) -> int:
    """Exit 0, or 4 (the store's code) when `--send` met a store failure: what was sent and could not be
    recorded is named with the journal that keeps it; what was not sent is sent by the next delivery."""
    app = build_app(args)
    result = app.check(parse_date(args.date, "--date"), send=args.send)
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    for row in result.stale:
        print(f"stale: {row.line()}", file=sys.stderr)
    if result.delivery is not None:
        print(f"delivery: {result.delivery.line()}", file=sys.stderr)
        for failure in result.delivery.failed:
            print(f"failed: {failure}", file=sys.stderr)
    code = StoreError.exit_code if result.delivery is not None and result.delivery.store_failed else 0
    if args.json:
        print_json(result.to_json(), args.pretty)
        return code
    print("\n".join(check_lines(result, args.verbose_values)))
    return code
