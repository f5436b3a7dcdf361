"""Observations (one value per series and date) and the record of every fetch.

Every write is one transaction, so a process killed mid-fetch leaves a series
as it was before that write began. Reads are cached per series in memory,
checked against a cheap signature so another process's writes are never
missed.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from bot.data.sources.base import known_by as public_by
from bot.store.connect import insert, utc
from bot.store.schema import fetches, observations


class Observations:
    def __init__(self, engine):
        self.engine = engine
        self._cache: dict[str, tuple] = {}  # series -> (signature, all its rows); see read

    def last_dates(self) -> dict[str, date]:
        """Newest stored date per series."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(observations.c.series, sa.func.max(observations.c.date))
                                .group_by(observations.c.series))
            return {series: last for series, last in rows}

    def last_release_dates(self) -> dict[str, date]:
        """Newest known release date per series that records them (monthly series)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(observations.c.series, sa.func.max(observations.c.release_date))
                                .where(observations.c.release_date.is_not(None)).group_by(observations.c.series))
            return {series: last for series, last in rows}

    def last_value_before(self, series: str, day: date) -> float | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(observations.c.value)
                               .where(observations.c.series == series, observations.c.date < day)
                               .order_by(observations.c.date.desc()).limit(1)).first()
            return row[0] if row else None

    def write(self, series: str, frame: pd.DataFrame, source: str, first_seen: date | None,
              fetched_at: datetime) -> int:
        """Insert new rows and update changed ones; return how many were new or changed.

        Unchanged rows are not written, so a repeated fetch is a no-op. A stored
        release date is never replaced by an unknown one; a value with no known
        release date gets `first_seen` (the day the bot first saw it) when given.
        """
        if frame.empty:
            return 0
        fetched_at = utc(fetched_at)
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
                stmt = insert(self.engine, observations)
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

    def read(self, series: list[str] | None = None, known_by: date | None = None) -> dict[str, pd.DataFrame]:
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
        return {name: public_by(self._cache[name][1], known_by) for name in signatures if name in self._cache}

    def _read_sql(self, series: list[str]) -> dict[str, pd.DataFrame]:
        """Every stored row of `series` (the cache filters by date; see read)."""
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

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(observations.c.series, sa.func.count())
                                     .group_by(observations.c.series)).all())

    def record_fetch(self, series: str, source: str, ok: bool, rows: int, message: str, started_at: datetime):
        with self.engine.begin() as conn:
            conn.execute(fetches.insert().values(series=series, source=source, ok=ok, rows=rows,
                                                 message=message[:2000], started_at=utc(started_at)))

    def last_fetches(self) -> dict[str, dict]:
        """The newest fetch record per series."""
        latest = (sa.select(fetches.c.series, sa.func.max(fetches.c.id).label("id"))
                  .group_by(fetches.c.series).subquery())
        query = sa.select(fetches).join(latest, fetches.c.id == latest.c.id)
        with self.engine.connect() as conn:
            return {row.series: row._asdict() for row in conn.execute(query)}
