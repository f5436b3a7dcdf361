"""Each session's job in a short-lived child process, so the daemon between closes holds only itself.

A job imports what it uses and keeps it: yfinance (~36 MB) to fetch, matplotlib
(~20 MB) to draw the charts, the frames of the whole history while it
evaluates. In one long-lived process all of that stays resident for the rest
of the bot's life, so an idle daemon with Yahoo, Telegram and charts sat near
190 MB on a host that may have 512 MB for everything. Run in a child, the job
gives every page back when it exits; the daemon keeps only the scheduler, the
lock, the Telegram command loop and the configuration.

What the child runs on is what the daemon holds, not what the files say now:
the daemon pickles its last good configuration (`PinnedConfig`), so an invalid
edit made since never stops a job (the daemon reports the edit once, as
always). The child opens its own connection to the same store; the daemon's
instance lock stays with the daemon, and its fence goes with the job: the
child's sends stop once the daemon's lock is another's.

The child ignores SIGINT and SIGTERM: the daemon decides when to stop, and
lets the job finish its step as it would in process; a kill mid-send is what
the outbox leases are for. The job's result (`SessionOutcome`) comes back
pickled; an exception in the child is raised again in the daemon.

`multiprocessing`'s spawn start method (a fresh interpreter, no fork of a
process that runs threads) via `concurrent.futures`, one task per child.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from bot import logs
from bot.app import App
from bot.settings.live import LiveConfig, Loaded
from bot.store import open_store

log = logging.getLogger(__name__)


class PinnedConfig(LiveConfig):
    """One good configuration as it stood, never re-read from the files."""

    def __init__(self, live: LiveConfig, loaded: Loaded):
        super().__init__(live.rules_path, live.config_dir)
        self.current = loaded

    def reload(self) -> bool:
        return False


@dataclass(frozen=True)
class ChildJob:
    """What the child needs to be the daemon's app: its configuration, store, clock and heartbeat."""

    config: PinnedConfig
    store_url: str
    clock: object
    heartbeat_url: str | None
    log_level: int
    fence: object = None  # the daemon's leader lock (bot.store.lock.Fence): the child's sends stop once it is lost

    @classmethod
    def of(cls, app) -> "ChildJob":
        if app.notifiers is not None or app.fetcher is not None:
            raise ValueError("a session job in a child process uses the configured channels and sources; "
                             "an app with notifier or fetcher overrides runs its jobs in process")
        # the file's rules: the child binds the store's overrides itself, as they stand when it runs
        return cls(PinnedConfig(app.config, app.config.get()), app.store.url, app.clock, app.heartbeat_url,
                   logging.getLogger().level, app.fence)


def run_session(job: ChildJob, session):
    """The daemon's `app.session_job.run_due(session)`, in a child process that exits when it is done."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_in_child, job, session).result()


def _in_child(job: ChildJob, session):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs.setup(logging.getLevelName(job.log_level))
    app = App(job.config, clock=job.clock, store=open_store(job.store_url), heartbeat_url=job.heartbeat_url)
    app.fence = job.fence
    try:
        return app.session_job.run_due(session)
    finally:
        app.close()
