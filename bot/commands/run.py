"""`run`: the bot. A start-up banner, then the daemon (or, with --once, catch up and exit)."""

from __future__ import annotations

import logging
import sys

from bot import __version__
from bot.app.schedule import next_run
from bot.clock import ET
from bot.commands.common import build_app
from bot.daemon.runner import Daemon
from bot.errors import DataError, StoreError
from bot.render.status import channel_line, trouble_line

log = logging.getLogger(__name__)


def banner_lines(app) -> list[str]:
    """What a user needs to see at start: which bot, which config, which store, which channels, when next."""
    loaded = app.loaded
    session, when = next_run(app.clock.now(), loaded.settings.schedule.offset_minutes)
    local = when.astimezone()
    lines = [f"closebell {__version__}",
             f"config: {app.config.config_dir} (rules: {app.config.rules_path}, {len(loaded.rules)} rule(s))",
             f"store: {app.store.where}",
             f"next run: {session:%Y-%m-%d} at {when.astimezone(ET):%H:%M %Z} ({local:%H:%M %Z} local)"]
    channels = app.channels()
    lines += [channel_line(channel) for channel in channels] + [trouble_line(channels)]
    return lines


def run(args) -> int:
    app = build_app(args, data_dir=None)
    for line in banner_lines(app):
        log.info("%s", line)
    daemon = Daemon(app, isolated=not args.in_process)
    if args.once:
        daemon.install_signal_handlers()
        if not daemon.lock.acquire():
            raise StoreError("another instance holds the lock")
        try:
            outcomes = app.catch_up(should_stop=daemon.stop_event.is_set)
        finally:
            daemon.lock.release()
        failed = [o for o in outcomes if o.status == "failed"]
        for outcome in outcomes:
            print(outcome.line(), file=sys.stderr if outcome.status == "failed" else sys.stdout)
        if failed:
            raise DataError(f"{len(failed)} of {len(outcomes)} session(s) could not run; "
                            "`closebell status` shows the sources, `closebell sources` tests each feed, "
                            "and `run --once` again retries them")
        return 0
    telegram = any(c.channel == "telegram" and c.configured for c in app.channels())
    if telegram and not args.no_commands:
        from bot.telegram.poller import CommandPoller  # deliberately lazy: python-telegram-bot only when Telegram is on
        daemon.commands = CommandPoller(app)
    daemon.run()
    return 0
