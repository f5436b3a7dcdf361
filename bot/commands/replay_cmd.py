"""`replay`: the whole bot over history on a simulated clock; one line per alert on its evening.

History is printed, never pushed: unless `--send` asks for it, the replay's
process drops every setting that lets a message leave the machine (Telegram,
email, apprise, the heartbeat) before anything reads them, so a `.env` set up
for the live bot cannot make 2024's alerts ring a phone today. `--send` first
prints how many alerts will go where.
"""

from __future__ import annotations

import sys
from datetime import datetime

from bot.clock import ET, SimulatedClock
from bot.commands.common import build_app, parse_window
from bot.daemon.replay import Arrivals, firings, replay, replay_store
from bot.settings import env


def run(args) -> int:
    start, end = parse_window(args)
    if not args.send:
        withheld = env.withhold_outside_channels()
        if withheld:
            print(f"replay: printing alerts only; {', '.join(withheld)} not used (--send delivers them)",
                  file=sys.stderr)
    arrivals = Arrivals(args.data_dir)
    clock = SimulatedClock(datetime.combine(start, datetime.min.time(), ET))
    app = build_app(args, data_dir=None, store=replay_store(args.fresh, send=args.send), fetcher=arrivals,
                    clock=clock, heartbeat_url=None)
    if args.send:
        count = firings(app, args.data_dir, start, end)
        where = ", ".join(c.channel for c in app.channels() if c.configured)
        print(f"replay --send: {count} alert(s) from {start} to {end} will be delivered to: {where}",
              file=sys.stderr)
        print("replay --send: sending them now, as if each evening were today", file=sys.stderr, flush=True)
    outcomes = replay(app, arrivals, start, end, progress=sys.stderr.isatty())
    alerts = sum(o.queued for o in outcomes)
    print(f"replay: {len(outcomes)} session(s) from {start} to {end}, {alerts} alert row(s) queued", file=sys.stderr)
    return 0
