"""Store: observations and fetch records (and, for delivery and the daemon, runs, outbox, mutes).

Written once with SQLAlchemy Core for SQLite and PostgreSQL. Every write is one
transaction, so a process killed mid-fetch leaves the store as it was before
that series' write began.
"""

from __future__ import annotations

import logging
import os
from datetime import date, datetime, timezone

import pandas as pd
import sqlalchemy as sa

from bot.errors import StoreError
from bot.settings.paths import state_dir
from bot.store import schema
from bot.store.schema import fetches, meta, mutes, observations, outbox, runs

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x636C6F73  # PostgreSQL advisory lock id while migrating ("clos")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("DATABASE_URL")
    if url:
        # Heroku-style URLs say postgres://; SQLAlchemy wants a driver
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://"):]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'closebell.db'}"


def open_store(url: str | None = None) -> "Store":
    return Store(database_url(url))


class OutboxStore:
    """Outbox SQL, mixed into Store. Rows move pending -> sending -> sent | pending (retry) | failed."""

    def outbox_add(self, rows: list[dict], now: datetime) -> int:
        """Insert alerts not already queued for (rule, session, channel); return how many were new."""
        if not rows:
            return 0
        stmt = (self._insert(outbox).on_conflict_do_nothing(index_elements=["rule_id", "session", "channel"])
                .returning(outbox.c.id))
        now = _utc(now)
        full = [dict(r, status="pending", attempts=0, next_attempt_at=now, last_error="", created_at=now)
                for r in rows]
        with self.engine.begin() as conn:
            return sum(len(conn.execute(stmt, row).all()) for row in full)

    def outbox_due(self, now: datetime, limit: int = 1000) -> list:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(outbox).where(outbox.c.status == "pending",
                                                        outbox.c.next_attempt_at <= _utc(now))
                                .order_by(outbox.c.session, outbox.c.id).limit(limit)).all()

    def outbox_claim(self, row_id: int) -> bool:
        """Mark a row as being sent; False if another process took it first."""
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.status == "pending")
                                .values(status="sending")).rowcount == 1

    def outbox_sent(self, row_id: int, now: datetime):
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(status="sent", sent_at=_utc(now), attempts=outbox.c.attempts + 1, last_error=""))

    def outbox_retry(self, row_id: int, error: str, next_at: datetime, failed: bool):
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(status="failed" if failed else "pending", last_error=error[:2000],
                                 next_attempt_at=_utc(next_at), attempts=outbox.c.attempts + 1))

    def outbox_recover(self) -> int:
        """After a crash, rows caught mid-send go back to pending (sent again: at least once)."""
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.status == "sending")
                                .values(status="pending")).rowcount

    def outbox_requeue_failed(self, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.status == "failed")
                                .values(status="pending", next_attempt_at=_utc(now), attempts=0)).rowcount

    def outbox_rows(self, statuses=None, limit: int = 1000) -> list:
        query = sa.select(outbox.c.id, outbox.c.rule_id, outbox.c.session, outbox.c.channel, outbox.c.severity,
                          outbox.c.status, outbox.c.attempts, outbox.c.next_attempt_at, outbox.c.last_error,
                          outbox.c.created_at, outbox.c.sent_at, outbox.c.payload)
        if statuses:
            query = query.where(outbox.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).all()

    def outbox_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all())

    # -- mutes ----------------------------------------------------------------------------

    def mute(self, rule_id: str, until: datetime):
        stmt = self._insert(mutes)
        stmt = stmt.on_conflict_do_update(index_elements=["rule_id"], set_={"until": stmt.excluded.until})
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"rule_id": rule_id, "until": _utc(until)}])

    def unmute(self, rule_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(mutes.delete().where(mutes.c.rule_id == rule_id)).rowcount > 0

    def mutes(self, now: datetime) -> dict[str, datetime]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(mutes.c.rule_id, mutes.c.until).where(mutes.c.until > _utc(now))).all()
        return {rid: stored_time(until) for rid, until in rows}

    # -- runs -----------------------------------------------------------------------------

    def run_started(self, session: date, now: datetime, late: bool):
        stmt = self._insert(runs).on_conflict_do_update(
            index_elements=["session"], set_={"status": "running", "started_at": now})
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"session": session, "status": "running", "started_at": _utc(now), "late": late,
                                 "detail": ""}])

    def run_finished(self, session: date, now: datetime, detail: str):
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.session == session)
                         .values(status="done", finished_at=_utc(now), detail=detail[:4000]))

    def last_done_session(self) -> date | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(runs.c.session)).where(runs.c.status == "done")).scalar()

    def runs_list(self, limit: int = 10) -> list:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs).order_by(runs.c.session.desc()).limit(limit)).all()


def _utc(value: datetime) -> datetime:
    """Every datetime is stored in UTC: SQLite keeps no offset, so a local time would read back wrong."""
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def stored_time(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class Store(OutboxStore):
    def __init__(self, url: str):
        self.url = url
        kwargs = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use database URL: {exc}") from None
        self.dialect = self.engine.dialect.name
        self._cache: dict[str, tuple] = {}  # series -> (signature, all its rows); see read_observations
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self.migrate()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.display_url}: {exc.orig}") from None

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self):
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------

    def version(self, conn=None) -> int:
        def read(c):
            if not sa.inspect(c).has_table("meta"):
                return 0
            row = c.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
            return int(row[0]) if row else 0
        if conn is not None:
            return read(conn)
        with self.engine.connect() as c:
            return read(c)

    def migrate(self):
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            current = self.version(conn)
            if current > schema.VERSION:
                raise StoreError(f"the store is at schema version {current}, newer than this bot "
                                 f"({schema.VERSION}): upgrade Closebell")
            for step in range(current, schema.VERSION):
                log.info("store: migrating schema %d -> %d", step, step + 1)
                schema.MIGRATIONS[step](conn)
                _set_meta(conn, "schema_version", str(step + 1))

    def _insert(self, table):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    # -- observations ---------------------------------------------------------------------

    def last_dates(self) -> dict[str, date]:
        """Newest stored date per series."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(observations.c.series, sa.func.max(observations.c.date))
                                .group_by(observations.c.series))
            return {series: last for series, last in rows}

    def last_value_before(self, series: str, day: date) -> float | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(observations.c.value)
                               .where(observations.c.series == series, observations.c.date < day)
                               .order_by(observations.c.date.desc()).limit(1)).first()
            return row[0] if row else None

    def write_observations(self, series: str, frame: pd.DataFrame, source: str,
                           first_seen: date | None = None, fetched_at: datetime | None = None) -> int:
        """Insert new rows and update changed ones; return how many were new or changed.

        Unchanged rows are not written, so a repeated fetch is a no-op. A stored
        release date is never replaced by an unknown one; a value with no known
        release date gets `first_seen` (the day the bot first saw it) when given.
        """
        if frame.empty:
            return 0
        fetched_at = fetched_at or now_utc()
        start = frame.index.min().date()
        with self.engine.begin() as conn:
            existing = {d: (v, r, s) for d, v, r, s in conn.execute(
                sa.select(observations.c.date, observations.c.value, observations.c.release_date,
                          observations.c.source)
                .where(observations.c.series == series, observations.c.date >= start))}
            rows = []
            values = frame["value"].to_numpy()
            releases = frame["release_date"]
            for i, stamp in enumerate(frame.index):
                day = stamp.date()
                value = float(values[i])
                release = releases.iat[i]
                release = None if pd.isna(release) else release.date()
                old = existing.get(day)
                if release is None:
                    release = old[1] if old and old[1] is not None else first_seen
                if old and abs(old[0] - value) <= 1e-9 * max(1.0, abs(value)) and old[1] == release:
                    continue
                rows.append({"series": series, "date": day, "value": value, "release_date": release,
                             "source": source, "fetched_at": fetched_at})
            if rows:
                stmt = self._insert(observations)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[observations.c.series, observations.c.date],
                    set_={"value": stmt.excluded.value, "release_date": stmt.excluded.release_date,
                          "source": stmt.excluded.source, "fetched_at": stmt.excluded.fetched_at})
                conn.execute(stmt, rows)
                self._cache_merge(conn, series, rows)
        return len(rows)

    def _cache_merge(self, conn, series: str, rows: list[dict]):
        """Write-through: fold rows just written into the cached series, with its new signature."""
        cached = self._cache.pop(series, None)
        if cached is None:
            return
        count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(observations.c.fetched_at))
                                     .where(observations.c.series == series)).one()
        added = pd.DataFrame({"value": [r["value"] for r in rows],
                              "release_date": pd.to_datetime(pd.Series([r["release_date"] for r in rows],
                                                                       dtype=object)).to_numpy(),
                              "source": [r["source"] for r in rows]},
                             index=pd.DatetimeIndex(pd.to_datetime([r["date"] for r in rows]), name="date"))
        merged = pd.concat([cached[1], added])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        self._cache[series] = ((count, str(newest)), merged)

    def read_observations(self, series: list[str] | None = None, known_by: date | None = None) \
            -> dict[str, pd.DataFrame]:
        """Stored rows per series, as sources return them (index date; value, release_date, source).

        `known_by` keeps only what was public on that day: a daily value from its
        date, a monthly value from its release date (point in time).

        The daemon and replay read the same history after every session, so
        whole series are kept in memory, checked against a cheap signature (row
        count and newest fetch time) so another process's writes are never missed.
        """
        with self.engine.connect() as conn:
            query = sa.select(observations.c.series, sa.func.count(), sa.func.max(observations.c.fetched_at))
            if series is not None:
                query = query.where(observations.c.series.in_(list(series)))
            signatures = {name: (count, str(newest)) for name, count, newest in
                          conn.execute(query.group_by(observations.c.series))}
        stale = [name for name, sig in signatures.items() if self._cache.get(name, (None,))[0] != sig]
        if stale:
            fresh = self._read_sql(stale)
            for name in stale:
                if name in fresh:
                    self._cache[name] = (signatures[name], fresh[name])
        from bot.data.load import known_by as public_by
        return {name: public_by(self._cache[name][1], known_by) for name in signatures if name in self._cache}

    def _read_sql(self, series: list[str]) -> dict[str, pd.DataFrame]:
        """Every stored row of `series` (the cache filters by date; see read_observations)."""
        query = sa.select(observations.c.series, observations.c.date, observations.c.value,
                          observations.c.release_date, observations.c.source)
        query = query.where(observations.c.series.in_(list(series)))
        query = query.order_by(observations.c.series, observations.c.date)
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query).all()]
        out = {}
        if not rows:
            return out
        names, dates, values, releases, sources = (list(c) for c in zip(*rows))
        starts = [0] + [i for i in range(1, len(names)) if names[i] != names[i - 1]] + [len(names)]
        for lo, hi in zip(starts, starts[1:]):
            out[names[lo]] = pd.DataFrame(
                {"value": pd.array(values[lo:hi], dtype="float64").to_numpy(),
                 "release_date": pd.to_datetime(pd.Series(releases[lo:hi], dtype=object)).to_numpy(),
                 "source": sources[lo:hi]},
                index=pd.DatetimeIndex(pd.to_datetime(dates[lo:hi]), name="date"))
        return out

    def count_observations(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(observations.c.series, sa.func.count())
                                     .group_by(observations.c.series)).all())

    def record_fetch(self, series: str, source: str, ok: bool, rows: int, message: str = "",
                     started_at: datetime | None = None):
        with self.engine.begin() as conn:
            conn.execute(fetches.insert().values(series=series, source=source, ok=ok, rows=rows,
                                                 message=message[:2000], started_at=started_at or now_utc()))

    def last_fetches(self) -> dict[str, dict]:
        """The newest fetch record per series."""
        latest = (sa.select(fetches.c.series, sa.func.max(fetches.c.id).label("id"))
                  .group_by(fetches.c.series).subquery())
        query = sa.select(fetches).join(latest, fetches.c.id == latest.c.id)
        with self.engine.connect() as conn:
            return {row.series: row._asdict() for row in conn.execute(query)}


def _set_meta(conn, key, value):
    updated = conn.execute(meta.update().where(meta.c.key == key).values(value=value)).rowcount
    if not updated:
        conn.execute(meta.insert().values(key=key, value=value))


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
