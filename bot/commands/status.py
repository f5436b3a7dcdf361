from __future__ import annotations


def run(args) -> int:
    from bot.commands.common import load_all
    from bot.daemon.live_rules import Loaded
    from bot.status import status_lines
    from bot.store import open_store
    series, settings, rules = load_all(args)
    print("\n".join(status_lines(open_store(), Loaded(series, settings, rules))))
    return 0
