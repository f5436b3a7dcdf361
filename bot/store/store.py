"""The Store facade: one object callers hold, each concern in its own module behind it; the outbox table
is used directly, as `store.outbox` (bot.store.outbox), by bot.notify.delivery and the outbox's verbs.

    observations.py  observations and fetch records      outbox.py  the outbox table: rows, claims, leases
    runs.py          run records per session             mutes.py   muted rules
    schema.py        tables and versioned migrations     lock.py    one active instance
    connect.py       URL, engine, failures as StoreError

Written once with SQLAlchemy Core for SQLite and PostgreSQL; nothing outside
bot/store speaks SQL. Every time the store records is passed in; where a
caller leaves one out (a fetch's timestamp), it comes from the store's clock.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from bot.clock import SYSTEM, Clock, stored_time
from bot.store import schema
from bot.store.connect import create_engine, database_url, where
from bot.store.mutes import Mutes
from bot.store.observations import Observations
from bot.store.outbox import Outbox
from bot.store.overrides import Overrides
from bot.store.runs import Runs

__all__ = ["Store", "open_store", "database_url", "stored_time"]


def open_store(url: str | None = None, clock: Clock = SYSTEM) -> "Store":
    """The store the settings name: DATABASE_URL, else $CLOSEBELL_HOME/closebell.db."""
    return Store(database_url(url), clock=clock)


class Store:
    def __init__(self, url: str, clock: Clock = SYSTEM):
        self.url = url
        self.clock = clock
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self._observations = Observations(self.engine)
        self.outbox = Outbox(self.engine)  # the outbox table: store.outbox.claim(...), store.outbox.rows()
        self._mutes = Mutes(self.engine)
        self._runs = Runs(self.engine)
        self.overrides = Overrides(self.engine)  # parameter overrides from the phone (bot.store.overrides)
        self.migrate()  # also the first connection: a damaged file or unreachable server is a StoreError here

    @property
    def where(self) -> str:
        """The SQLite file, or user@host:port/database: how messages name this store."""
        return where(self.engine)

    def close(self):
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------

    def version(self) -> int:
        with self.engine.connect() as conn:
            return schema.version(conn)

    def migrate(self):
        schema.migrate(self.engine)

    # -- observations and fetch records ---------------------------------------------------

    def last_dates(self) -> dict[str, date]:
        return self._observations.last_dates()

    def last_release_dates(self) -> dict[str, date]:
        return self._observations.last_release_dates()

    def last_value_before(self, series: str, day: date) -> float | None:
        return self._observations.last_value_before(series, day)

    def write_observations(self, series: str, frame: pd.DataFrame, source: str,
                           first_seen: date | None = None, fetched_at: datetime | None = None) -> int:
        return self._observations.write(series, frame, source, first_seen, fetched_at or self.clock.now())

    def read_observations(self, series: list[str] | None = None, known_by: date | None = None) \
            -> dict[str, pd.DataFrame]:
        return self._observations.read(series, known_by)

    def count_observations(self) -> dict[str, int]:
        return self._observations.counts()

    def record_fetch(self, series: str, source: str, ok: bool, rows: int, message: str = "",
                     started_at: datetime | None = None):
        self._observations.record_fetch(series, source, ok, rows, message, started_at or self.clock.now())

    def last_fetches(self) -> dict[str, dict]:
        return self._observations.last_fetches()

    # -- mutes ----------------------------------------------------------------------------

    def mute(self, rule_id: str, until: datetime):
        self._mutes.mute(rule_id, until)

    def unmute(self, rule_id: str) -> bool:
        return self._mutes.unmute(rule_id)

    def mutes(self, now: datetime) -> dict[str, datetime]:
        return self._mutes.active(now)

    # -- runs -----------------------------------------------------------------------------

    def run_started(self, session: date, now: datetime, late: bool):
        self._runs.started(session, now, late)

    def run_finished(self, session: date, now: datetime, detail: str, status: str = "done"):
        self._runs.finished(session, now, detail, status)

    def last_done_session(self) -> date | None:
        return self._runs.last_done()

    def runs_list(self, limit: int = 10) -> list:
        return self._runs.recent(limit)
