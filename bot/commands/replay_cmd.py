from __future__ import annotations

import sys

from bot.commands.common import UsageError, parse_date


def run(args) -> int:
    from bot.commands.run import build_runtime
    from bot.daemon.replay import Arrivals, replay
    from bot.settings.paths import state_dir
    from bot.store import Store
    start, end = parse_date(args.from_, "--from"), parse_date(args.to, "--to")
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    path = state_dir() / "replay.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    store = Store(f"sqlite:///{path}")
    runtime = build_runtime(args, store, fetch=Arrivals(args.data_dir))
    outcomes = replay(runtime, runtime.fetch, start, end, progress=sys.stderr.isatty())
    alerts = sum(o.queued for o in outcomes)
    print(f"replay: {len(outcomes)} session(s) from {start} to {end}, {alerts} alert row(s) queued", file=sys.stderr)
    return 0
