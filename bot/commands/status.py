"""`status`: last run, next run, the store, data freshness, deliveries."""

from __future__ import annotations

from bot.commands.common import build_app


def run(args) -> int:
    from bot.render import status_lines
    print("\n".join(status_lines(build_app(args).status())))
    return 0
