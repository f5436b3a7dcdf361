"""Observations (one value per series and date, and a monthly period's later vintages) and every fetch.

A monthly period keeps every value it has been seen with (ALFRED's vintages):
its first known vintage in `observations`, with the day it became known
(`realtime_start`), and each later one in `revisions`. A revision adds a
vintage and never overwrites one, so a backtest can see the first print that
the market saw on the day and the live bot never forgets it. A daily series
keeps one vintage: a changed close (a dividend adjustment) replaces the old one.

Every write is one transaction, so a process killed mid-fetch leaves a series
as it was before that write began. Reads are cached per series in memory,
checked against a cheap signature so another process's writes are never
missed.
"""

from __future__ import annotations

import functools
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bot.data.sources.base import known_by as public_by
from bot.store.connect import insert, utc
from bot.store.schema import fetches, observations, revisions


UPSERT_COLUMNS = ["series", "date", "value", "release_date", "realtime_start", "source", "fetched_at"]


class Observations:
    def __init__(self, engine):
        self.engine = engine
        self._cache: dict[str, tuple] = {}  # series -> (signature, all its rows); see read
        self._release_indexed: bool | None = None  # an index on (series, release_date)? see last_release_dates
        self._upsert_sql = None  # (SQL, parameter order, bind processors), compiled on first write; see _upsert

    def last_dates(self) -> dict[str, date]:
        """Newest stored date per series: one seek per series in the (series, date) key."""
        with self.engine.connect() as conn:
            return _per_series(conn, "date")

    def last_release_dates(self) -> dict[str, date]:
        """Newest known release date per series that records them (monthly series).

        Seeks per series where an index on (series, release_date) exists; without
        one every row is read anyway, and one GROUP BY over the rows with a release
        date does that fastest (on both databases).
        """
        with self.engine.connect() as conn:
            if self._release_indexed is None:
                self._release_indexed = any(ix["column_names"][:2] == ["series", "release_date"]
                                            for ix in sa.inspect(conn).get_indexes("observations"))
            if self._release_indexed:
                return _per_series(conn, "release_date")
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
        """Insert new rows and update changed ones; return how many periods were new or changed.

        Unchanged rows are not written, so a repeated fetch is a no-op. A
        monthly series (rows with a release date or a realtime_start, or
        `first_seen` given) keeps vintages: see `_write_vintages`. A daily one
        keeps one value per date.

        Rows are built from the frame's arrays. When nothing is stored from the
        frame's first date on (a first load, a preload, an append), every row is
        new: no comparison, one executemany, and a series seen whole for the first
        time goes straight into the read cache.
        """
        if frame.empty:
            return 0
        fetched_at = utc(fetched_at)
        days = frame.index.date.tolist()
        values = frame["value"].to_numpy(dtype=float).tolist()
        releases = _dates(frame["release_date"])
        starts = _dates(frame["realtime_start"]) if "realtime_start" in frame else [None] * len(days)
        if first_seen is not None or any(r is not None for r in releases) or any(s is not None for s in starts):
            return self._write_vintages(series, days, values, releases, starts, source, first_seen, fetched_at)
        start = min(days)
        with self.engine.begin() as conn:
            newest = conn.execute(sa.select(sa.func.max(observations.c.date))  # one seek in the key
                                  .where(observations.c.series == series)).scalar()
            if newest is None or newest < start:
                keep = [(day, value, None, None) for day, value in zip(days, values)]
            else:
                keep = _changed(conn, series, start, days, values)
            if keep:
                self._upsert(conn, series, keep, source, fetched_at)
                self._cache_merge(conn, series, keep, source, whole=newest is None)
        return len(keep)

    def _write_vintages(self, series, days, values, releases, starts, source, first_seen, fetched_at) -> int:
        """Fold each period's rows into its stored vintages; write the periods that changed.

        A row without a realtime_start is the value as seen now: news only when
        it differs from the period's latest vintage, and then a vintage known
        from `first_seen` (the day the bot saw it), else from the day it is
        written. A new period seen that way is known from `first_seen` (so a
        keyless bot's history is point in time from the day it is installed),
        or of unknown vintage when no day is given (a replay of an undated file).
        A stored release date is never replaced by an unknown one; a period with
        none is released on `first_seen`.
        """
        incoming: dict[date, list] = {}
        for day, value, release, start in zip(days, values, releases, starts):
            incoming.setdefault(day, []).append((start, value, release))
        since = min(days)
        with self.engine.begin() as conn:
            stored: dict[date, tuple] = {}
            for day, value, release, start in conn.execute(
                    sa.select(observations.c.date, observations.c.value, observations.c.release_date,
                              observations.c.realtime_start)
                    .where(observations.c.series == series, observations.c.date >= since)):
                stored[day] = (release, [(start, value)])
            for day, start, value in conn.execute(
                    sa.select(revisions.c.date, revisions.c.realtime_start, revisions.c.value)
                    .where(revisions.c.series == series, revisions.c.date >= since)
                    .order_by(revisions.c.date, revisions.c.realtime_start)):
                if day in stored:
                    stored[day][1].append((start, value))
            firsts, added, removed = [], [], []
            for day, rows in incoming.items():
                old_release, old = stored.get(day, (None, []))
                release = next((r for _, _, r in rows if r is not None), None) or old_release or first_seen
                vintages = list(old)
                for start, value, _ in sorted(rows, key=lambda r: (r[0] is not None, r[0] or since)):
                    if start is None:
                        if vintages and _same(vintages[-1][1], value):
                            continue
                        start = first_seen or (fetched_at.date() if vintages else None)
                    vintages = _add_vintage(vintages, start, value)
                if vintages == old and release == old_release:
                    continue
                if not old or vintages[0] != old[0] or release != old_release:
                    firsts.append((day, vintages[0][1], release, vintages[0][0]))
                added += [(day, start, value) for start, value in vintages[1:] if (start, value) not in old[1:]]
                removed += [(day, start) for start, value in old[1:] if (start, value) not in vintages[1:]]
            for day, start in removed:
                conn.execute(revisions.delete().where(revisions.c.series == series, revisions.c.date == day,
                                                      revisions.c.realtime_start == start))
            if added:
                conn.execute(revisions.insert(), [
                    {"series": series, "date": day, "realtime_start": start, "value": value, "source": source,
                     "fetched_at": fetched_at} for day, start, value in added])
            if firsts:
                self._upsert(conn, series, firsts, source, fetched_at)
        self._cache.pop(series, None)  # monthly series are small: read afresh
        return len({row[0] for row in firsts} | {row[0] for row in added} | {row[0] for row in removed})

    def _upsert(self, conn, series: str, rows: list[tuple], source: str, fetched_at: datetime):
        """INSERT ... ON CONFLICT UPDATE of (date, value, release, realtime_start) rows in one executemany.

        The statement is compiled once and each column converted by its type's own
        bind processor, as a list: SQLAlchemy's per-row parameter handling cost
        three times the database's own work for a series' whole history.
        """
        if self._upsert_sql is None:
            stmt = insert(self.engine, observations)
            stmt = stmt.on_conflict_do_update(
                index_elements=[observations.c.series, observations.c.date],
                set_={"value": stmt.excluded.value, "release_date": stmt.excluded.release_date,
                      "realtime_start": stmt.excluded.realtime_start, "source": stmt.excluded.source, "fetched_at": stmt.excluded.fetched_at})
            dialect = self.engine.dialect
            compiled = stmt.compile(dialect=dialect, column_keys=UPSERT_COLUMNS)
            order = compiled.positiontup if dialect.positional else None
            processors = {c: observations.c[c].type.dialect_impl(dialect).bind_processor(dialect)
                          for c in UPSERT_COLUMNS}
            for name in ("date", "release_date", "realtime_start"):  # SQLite keeps ISO text: date.isoformat, ten times cheaper
                if processors[name] is not None and processors[name](date(1, 2, 3)) == "0001-02-03":
                    processors[name] = date.isoformat
            self._upsert_sql = (compiled.string, order, processors)
        sql, order, processors = self._upsert_sql
        days, values, releases, starts = zip(*rows)
        columns = {"date": days, "value": values, "release_date": releases, "realtime_start": starts}
        for name in ("date", "value", "release_date", "realtime_start"):
            process = processors[name]
            if process is not None:
                columns[name] = [None if v is None else process(v) for v in columns[name]]
        for name, value in (("series", series), ("source", source), ("fetched_at", fetched_at)):
            process = processors[name]
            columns[name] = [process(value) if process is not None else value] * len(rows)
        if order is not None:
            params = list(zip(*(columns[name] for name in order)))
        else:
            params = [dict(zip(UPSERT_COLUMNS, row)) for row in zip(*(columns[c] for c in UPSERT_COLUMNS))]
        conn.exec_driver_sql(sql, params)

    def _cache_merge(self, conn, series: str, rows: list[tuple], source: str, whole: bool = False):
        """Write-through: fold (date, value, release, realtime_start) rows just written into the cached series, with its new
        signature. `whole`: the rows are all the series holds (it was empty), so it is cached even if it was
        not before: the read that follows a first load needs no query."""
        cached = self._cache.pop(series, None)
        if cached is None and not whole:
            return
        count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(observations.c.fetched_at))
                                     .where(observations.c.series == series)).one()
        if cached is None and count != len(rows):  # another process wrote to it meanwhile: read it afresh
            return
        days, values, releases, starts = zip(*rows)
        added = pd.DataFrame({"value": np.asarray(values, dtype="float64"),
                              "release_date": pd.to_datetime(pd.Series(releases, dtype=object)).to_numpy(),
                              "realtime_start": pd.to_datetime(pd.Series(starts, dtype=object)).to_numpy(),
                              "source": [source] * len(rows)},
                             index=pd.DatetimeIndex(pd.to_datetime(list(days)), name="date"))
        if cached is not None:
            added = pd.concat([cached[1], added])
        if not added.index.is_monotonic_increasing or not added.index.is_unique:
            added = added[~added.index.duplicated(keep="last")].sort_index()
        self._cache[series] = ((count, str(newest)), added)

    def read(self, series: list[str] | None = None, known_by: date | None = None) -> dict[str, pd.DataFrame]:
        """Stored rows per series, as sources return them (index date; value, release_date, source).

        `known_by` keeps only what was public on that day: a daily value from its
        date, a monthly value from its release date and, of its vintages, those
        known by then (point in time; bot.data.sources.base.known_by).

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
            query = sa.select(revisions.c.series, sa.func.count(), sa.func.max(revisions.c.fetched_at))
            if series is not None:
                query = query.where(revisions.c.series.in_(list(series)))
            for name, count, newest in conn.execute(query.group_by(revisions.c.series)):
                if name in signatures:
                    signatures[name] += (count, str(newest))
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
                          observations.c.release_date, observations.c.realtime_start, observations.c.source)
        query = query.where(observations.c.series.in_(list(series)))
        query = query.order_by(observations.c.series, observations.c.date)
        later = sa.select(revisions.c.series, revisions.c.date, revisions.c.value, revisions.c.realtime_start,
                          revisions.c.source).where(revisions.c.series.in_(list(series)))
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query).all()]
            revised = [tuple(r) for r in conn.execute(later).all()]
        out = {}
        if not rows:
            return out
        names, dates, values, releases, realtime, sources = (list(c) for c in zip(*rows))
        bounds = [0] + [i for i in range(1, len(names)) if names[i] != names[i - 1]] + [len(names)]
        for lo, hi in zip(bounds, bounds[1:]):
            out[names[lo]] = pd.DataFrame(
                {"value": pd.array(values[lo:hi], dtype="float64").to_numpy(),
                 "release_date": pd.to_datetime(pd.Series(releases[lo:hi], dtype=object)).to_numpy(),
                 "realtime_start": pd.to_datetime(pd.Series(realtime[lo:hi], dtype=object)).to_numpy(),
                 "source": sources[lo:hi]},
                index=pd.DatetimeIndex(pd.to_datetime(dates[lo:hi]), name="date"))
        by_series: dict[str, list] = {}
        for name, day, value, start, source in revised:
            by_series.setdefault(name, []).append((day, value, start, source))
        for name, extra in by_series.items():
            if name in out:
                out[name] = _with_revisions(out[name], extra)
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


def _changed(conn, series, start, days, values) -> list[tuple]:
    """(date, value, release, realtime_start) of the daily rows that differ from what is stored from `start` on."""
    existing = {day: value for day, value in conn.execute(
        sa.select(observations.c.date, observations.c.value)
        .where(observations.c.series == series, observations.c.date >= start))}
    return [(day, value, None, None) for day, value in zip(days, values)
            if day not in existing or not _same(existing[day], value)]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def _dates(column: pd.Series) -> list:
    """A datetime column as a list of `date`, None where missing."""
    stamps = pd.DatetimeIndex(column)
    return [None if missing else day for day, missing in zip(stamps.date.tolist(), stamps.isna().tolist())]


def _add_vintage(vintages: list[tuple], start: date | None, value: float) -> list[tuple]:
    """`vintages` ([(realtime_start, value)], first known first) with one more, never overwriting one.

    A vintage already known on `start` is kept as it is. A value the vintage
    before already had adds nothing; a value the vintage after has moves that
    one's start earlier (the same value, known sooner). A vintage of unknown
    date (None) gives way to the first dated one.
    """
    if any(known == start for known, _ in vintages):
        return vintages
    if start is None:
        return vintages or [(None, value)]
    vintages = [v for v in vintages if v[0] is not None]
    i = sum(1 for known, _ in vintages if known < start)
    if i and _same(vintages[i - 1][1], value):
        return vintages
    after = vintages[i + 1:] if i < len(vintages) and _same(vintages[i][1], value) else vintages[i:]
    return vintages[:i] + [(start, value)] + after


def _with_revisions(frame: pd.DataFrame, extra: list[tuple]) -> pd.DataFrame:
    """A series' first known vintages with its later ones: by period, first known first."""
    days, values, starts, sources = zip(*extra)
    index = pd.DatetimeIndex(pd.to_datetime(list(days)), name="date")
    release = frame["release_date"].reindex(index).to_numpy()  # a revision's period was released with its first
    later = pd.DataFrame({"value": np.asarray(values, dtype="float64"), "release_date": release,
                          "realtime_start": pd.to_datetime(pd.Series(starts, dtype=object)).to_numpy(),
                          "source": list(sources)}, index=index)
    both = pd.concat([frame, later])
    order = np.lexsort((both["realtime_start"].fillna(pd.Timestamp.min).to_numpy(), both.index.to_numpy()))
    return both.iloc[order]


def _per_series(conn, column: str) -> dict[str, date]:
    return {series: last for series, last in conn.execute(_newest_per_series(column)) if last is not None}


@functools.lru_cache(maxsize=None)
def _newest_per_series(column: str):
    """SELECT series, MAX(column) per series, without scanning the table (built once per column).

    A GROUP BY reads every row (20 ms for 40,000 rows, and replay asks after
    every session). Neither SQLite nor PostgreSQL skips through an index by
    itself, so the series are walked with a recursive CTE, each step one seek
    (the smallest name above the last), and each MAX is a correlated subquery:
    a seek to the end of the series in the (series, date) key, or in an index
    on (series, release_date) where the schema has one.
    """
    step = observations.alias("step")
    names = sa.select(sa.func.min(observations.c.series).label("series")).cte("names", recursive=True)
    names = names.union_all(
        sa.select(sa.select(sa.func.min(step.c.series)).where(step.c.series > names.c.series).scalar_subquery())
        .where(names.c.series.is_not(None)))
    inner = observations.alias("inner")
    newest = sa.select(sa.func.max(inner.c[column])).where(inner.c.series == names.c.series).scalar_subquery()
    return sa.select(names.c.series, newest).where(names.c.series.is_not(None))
