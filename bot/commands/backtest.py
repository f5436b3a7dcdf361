"""`backtest`: per rule, how often it fired and what followed, against the unconditional baseline.

The text report prints a summary per rule and its last firings (`--all`: every
firing, with its message); `--json` is compact and written rule by rule.
"""

from __future__ import annotations

import json
import sys

from bot.commands.common import build_app, parse_window, write_chart
from bot.render.backtest import backtest_lines

def run(args) -> int:
    start, end = parse_window(args)
    app = build_app(args)
    result = app.backtest(start, end)
    if args.plot:
        write_chart(args.plot, lambda buffer: app.plot_backtest(result, start, end, buffer))
    if args.json:
        write_json(result, args.pretty)
        return 0
    for line in backtest_lines(result, args.all):  # rule by rule: a big book is never one string
        print(line)
    return 0


def write_json(result, pretty: bool) -> None:
    """The result rule by rule, so a big rule book is never one string in memory."""
    if pretty:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = sys.stdout
    out.write(f'{{"from":{json.dumps(result.window_from)},"to":{json.dumps(result.window_to)},"rules":{{')
    for k, (report, text) in enumerate(result.rule_texts()):
        out.write(("," if k else "") + json.dumps(report.rule) + ":" + text)
    out.write("}" + (f',"revised":{json.dumps(result.revised)}' if result.revised else "") + "}\n")
