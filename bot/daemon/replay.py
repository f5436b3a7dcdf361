"""Replay: the daemon's schedule over real history, on a simulated clock, against the same app.

Each session of the window, in order: the clock moves to that session's run
time (close + offset, from the same trigger as the live schedule), the
session's data "arrives" (rows dated that day, and monthly values released
that day, are copied from `--data-dir` into the store), and the app's session
job runs: readiness, evaluation, outbox, notifiers. Mutes, run records and
deliveries are stamped in simulated time. The store is a SQLite file of its
own (`$CLOSEBELL_HOME/replay.db`; `replay-send.db` for `--send`), never the
live store (`DATABASE_URL` or `closebell.db`), so a replay never touches live
alerts; run the same command again after a kill and it resumes, delivering
nothing twice.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd

from bot.app.evaluation import prepare, series_needed
from bot.app.schedule import run_time
from bot.data import calendar, load
from bot.data.fetch import FetchResult
from bot.data.sources import csv as csv_source
from bot.settings.paths import state_dir
from bot.store import Store

log = logging.getLogger(__name__)


class Arrivals:
    """The fetcher of a replay: data becomes available at each session's close, never before."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.tables: dict[str, pd.DataFrame] = {}

    def table(self, series):
        """The series' whole file, cleaned like fetched data (bad rows named with file:line)."""
        if series.name not in self.tables:
            self.tables[series.name] = csv_source.read(Path(self.data_dir) / f"{series.name}.csv", series=series)
        return self.tables[series.name]

    def known_by(self, series, day):
        return load.known_by(self.table(series), day)

    def __call__(self, store, loaded, names, session, today=None):
        results = []
        for name in names:
            series = loaded.series[name]
            rows = self.known_by(series, session)
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
            rows = self.known_by(loaded.series[name], pd.Timestamp(before) - pd.Timedelta(days=1))
            store.write_observations(name, rows, "csv")


def replay_store(fresh: bool = False, send: bool = False):
    """The replay's own SQLite store ($CLOSEBELL_HOME/replay.db; replay-send.db for a replay that delivers,
    so a printed replay never marks as done what `--send` would send); `fresh` forgets a previous replay."""
    path = state_dir() / ("replay-send.db" if send else "replay.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    return Store(f"sqlite:///{path}")


def firings(app, data_dir: str, start: date, end: date) -> int:
    """How many alerts the rules fire in [start, end] on the history in `data_dir` (mutes aside): what a
    `replay --send` is about to deliver, said before it does."""
    ev = prepare(app.loaded.rules, app.loaded.series, data_dir=data_dir, as_of=end).evaluation
    return sum(len(ev.fire_dates(rule.id, pd.Timestamp(start), pd.Timestamp(end))) for rule in app.loaded.rules)


def replay(app, arrivals: Arrivals, start: date, end: date, progress: bool = False, per_session: bool = False,
           after_session=None):
    """Run every session in [start, end] at its run time on `app.clock` (a SimulatedClock); the outcomes
    in order. `after_session(outcome)` is called after each session's job (the soak test samples memory there).

    By default the rules are evaluated once over the whole window (re-evaluated only when the rules file
    changes) and the sessions are walked for readiness, mutes, outbox, delivery and run records: each
    session's answer reads only data public by its close, so the alerts are those of the per-session path
    (`per_session=True`, the live daemon's way: fetch then evaluate at every close), session for session.
    """
    store = app.store
    loaded = app.loaded
    names = series_needed(loaded.rules)
    done = store.last_done_session()
    if not per_session:  # everything up to `end` in one write per series; point in time is the frame's job
        arrivals.preload(store, loaded, names, pd.Timestamp(end) + pd.Timedelta(days=1))
    elif done is None:  # what was known before the window; each session's data then arrives at its close
        arrivals.preload(store, loaded, names, start)
    sessions = calendar.sessions(start, end)
    offset = loaded.settings.schedule.offset_minutes
    items = sessions
    if progress:
        from tqdm import tqdm  # deliberately lazy: only on a terminal
        items = tqdm(sessions, desc="replay", unit="session", leave=False)
    outcomes = []
    evaluation, evaluated_for = None, None
    for session in items:
        if done is not None and session.date() <= done:
            continue  # finished before an interruption: its alerts are in the outbox already
        app.clock.set(run_time(session, offset))
        if not per_session:
            current = app.loaded
            if evaluated_for is not current:  # first session, or the rules file changed
                evaluation = prepare(current.rules, current.series, store=store, as_of=end)
                evaluated_for = current
        outcomes.append(app.session_job.run_session(session, late=False, final=True, evaluation=evaluation))
        if after_session is not None:
            after_session(outcomes[-1])
    app.deliver_due()  # anything a kill left pending
    return outcomes
