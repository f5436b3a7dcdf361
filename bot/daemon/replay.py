"""Replay: the whole daemon pipeline over real history, on a simulated clock.

Each session of the window, in order: the clock moves to that session's run
time (close + offset, from the same trigger as the live schedule), the
session's data "arrives" (rows dated that day, and monthly values released
that day, are copied from `--data-dir` into the store), and the real job runs:
readiness, evaluation, outbox, notifiers. The store is a SQLite file of its
own (`$CLOSEBELL_HOME/replay.db`), so a replay never touches live alerts; run
the same command again after a kill and it resumes, delivering nothing twice.
"""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd

from bot.data import calendar, load
from bot.data.sources import csv as csv_source
from bot.data.fetch import FetchResult

log = logging.getLogger(__name__)


class Arrivals:
    """The fetcher of a replay: data becomes available at each session's close, never before."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.tables: dict[str, pd.DataFrame] = {}

    def table(self, name):
        if name not in self.tables:
            from pathlib import Path
            self.tables[name] = csv_source.read(Path(self.data_dir) / f"{name}.csv")
        return self.tables[name]

    def known_by(self, name, day):
        return load.known_by(self.table(name), day)

    def __call__(self, store, loaded, names, session):
        results = []
        for name in names:
            rows = self.known_by(name, session)
            series = loaded.series[name]
            if series.frequency == "daily":
                rows = rows[rows.index > pd.Timestamp(session) - pd.Timedelta(days=10)]
            else:
                rows = rows[rows["release_date"] > pd.Timestamp(session) - pd.Timedelta(days=40)]
            written = store.write_observations(name, rows, "csv")
            results.append(FetchResult(name, ok=True, source="csv", rows=written))
        return results

    def preload(self, store, loaded, names, before: date):
        """Everything known before the window starts, in one write per series."""
        for name in names:
            rows = self.known_by(name, pd.Timestamp(before) - pd.Timedelta(days=1))
            store.write_observations(name, rows, "csv")


def replay(runtime, arrivals: Arrivals, start: date, end: date, progress: bool = False):
    """Run every session in [start, end]; returns the outcomes in order."""
    from bot.analysis import series_needed
    from bot.pipeline import run_session
    loaded = runtime.config.get()
    names = series_needed(loaded.rules)
    done = runtime.store.last_done_session()
    if done is None:
        arrivals.preload(runtime.store, loaded, names, start)
    sessions = calendar.sessions(start, end)
    runtime.store.outbox_recover()
    items = sessions
    if progress:
        from tqdm import tqdm
        items = tqdm(sessions, desc="replay", unit="session", leave=False)
    outcomes = []
    for session in items:
        if done is not None and session.date() <= done:
            continue  # finished before an interruption: its alerts are in the outbox already
        outcomes.append(run_session(runtime, session, late=False, final=True))
    from bot.notify.outbox import deliver
    deliver(runtime.store, loaded.settings, notifiers=runtime.notifiers)  # anything a kill left pending
    return outcomes
