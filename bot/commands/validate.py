from __future__ import annotations

from bot.commands.common import load_all, rules_path


def run(args) -> int:
    _series, _settings, rules = load_all(args)
    print(f"{rules_path(args)}: {len(rules)} rule(s) valid: {', '.join(r.id for r in rules)}")
    return 0
