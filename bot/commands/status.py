"""`status`: last run, next run, the store, data freshness, deliveries."""

from __future__ import annotations

from bot.commands.common import build_app
from bot.render.status import status_lines


def run(args) -> int:
    print("\n".join(status_lines(build_app(args).status())))
    return 0
