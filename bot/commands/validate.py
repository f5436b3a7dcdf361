"""`validate`: every problem in the rules file (and its tests file) at file:line:col, then warnings."""

from __future__ import annotations

import sys

from bot.commands.common import build_app


def run(args) -> int:
    app = build_app(args)
    rules = app.loaded.rules
    tests = app.rules_tests()  # ConfigError at file:line:col when the tests file is wrong
    print(f"{app.config.rules_path}: {len(rules)} rule(s) valid: {', '.join(r.id for r in rules)}")
    if tests is not None:
        print(f"{tests.path}: {len(tests.expectations)} expectation(s) valid")
    for finding in app.warnings():
        print(f"{app.config.rules_path}:{finding.line}: warning: {finding.rule}: {finding.message}", file=sys.stderr)
    return 0
