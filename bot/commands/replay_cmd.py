"""`replay`: the whole bot over history on a simulated clock; one line per alert on its evening."""

from __future__ import annotations

import sys
from datetime import datetime

from bot.clock import ET, SimulatedClock
from bot.commands.common import build_app, parse_window
from bot.daemon.replay import Arrivals, replay, replay_store


def run(args) -> int:
    start, end = parse_window(args)
    arrivals = Arrivals(args.data_dir)
    clock = SimulatedClock(datetime.combine(start, datetime.min.time(), ET))
    app = build_app(args, data_dir=None, store=replay_store(args.fresh), fetcher=arrivals, clock=clock,
                    heartbeat_url=None)
    outcomes = replay(app, arrivals, start, end, progress=sys.stderr.isatty())
    alerts = sum(o.queued for o in outcomes)
    print(f"replay: {len(outcomes)} session(s) from {start} to {end}, {alerts} alert row(s) queued", file=sys.stderr)
    return 0
