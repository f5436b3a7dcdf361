"""`test-rules`: the rules' golden-episode expectations checked against real history; exit 1 on a failure."""

from __future__ import annotations

from bot.commands.common import build_app, parse_window, print_json
from bot.errors import RulesTestFailed


def run(args) -> int:
    start, end = parse_window(args)
    result = build_app(args).test_rules(args.tests, start, end)
    if args.json:
        print_json(result.to_json(), args.pretty)
    else:
        for outcome in result.failed:
            print(outcome.message)
        print(f"{result.path}: {result.summary}")
    if result.failed:
        raise RulesTestFailed(f"{len(result.failed)} of {len(result.outcomes)} expectation(s) failed")
    return 0
