"""Bring the store up to date: each series from its primary source, else its fallback.

Fetches are incremental: only what is newer than the last stored date, with an
overlap that picks up revisions (FRED revises CPI for months; ETF adjusted
closes change on ex-dividend days). Each series is written in its own
transaction, and each attempt is recorded with its source, so `status` can say
which source served what and which one failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.data import clean as cleaning
from bot.data.sources import get_source
from bot.data.sources.base import between
from bot.errors import ClosebellError, SourceError
from bot.settings.models import SeriesDef, SourceSettings

log = logging.getLogger(__name__)

OVERLAP = {"daily": timedelta(days=10), "monthly": timedelta(days=120)}
DEFAULT_HISTORY = timedelta(days=365 * 15)  # first backfill from a network source


@dataclass
class FetchResult:
    series: str
    ok: bool
    source: str = ""
    rows: int = 0  # new or changed rows written
    last: date | None = None  # newest stored date afterwards
    errors: list[str] = field(default_factory=list)  # each failed source, in order tried
    dropped: list[str] = field(default_factory=list)  # what cleaning rejected

    def line(self) -> str:
        if self.ok:
            extra = f"; dropped: {'; '.join(self.dropped)}" if self.dropped else ""
            via = f" (after: {'; '.join(self.errors)})" if self.errors else ""
            return f"{self.series}: {self.rows} new or changed row(s) from {self.source}, latest " \
                   f"{self.last or '-'}{via}{extra}"
        return f"{self.series}: FAILED: {'; '.join(self.errors)}"


def chain_for(series: SeriesDef, data_dir: str | None):
    """(source name, symbol, source settings) to try in order."""
    if data_dir:
        return [("csv", series.name, SourceSettings(base_url=str(data_dir)))]
    return [(ref.source, ref.symbol, None) for ref in series.chain]


def update(store, series_defs: dict[str, SeriesDef], settings=None, names=None, since: date | None = None,
           data_dir: str | None = None, today: date | None = None, progress: bool = False) -> list[FetchResult]:
    from bot.data.calendar import today_et
    today = today or today_et()
    names = list(names or series_defs)
    last_dates = store.last_dates()
    results = []
    items = names
    if progress:
        from tqdm import tqdm
        items = tqdm(names, desc="fetch", unit="series", leave=False)
    for name in items:
        series = series_defs[name]
        results.append(update_one(store, series, settings, since, data_dir, today, last_dates.get(name)))
        log.info("fetch %s", results[-1].line())
    return results


def update_one(store, series: SeriesDef, settings, since, data_dir, today, last: date | None) -> FetchResult:
    result = FetchResult(series.name, ok=False, last=last)
    if since is not None:
        start = since
    elif last is not None:
        start = last - OVERLAP[series.frequency]
    else:
        start = date(1900, 1, 1) if data_dir else today - DEFAULT_HISTORY
    for source_name, symbol, source_settings in chain_for(series, data_dir):
        if source_settings is None and settings is not None:
            source_settings = settings.sources.get(source_name)
        try:
            source = get_source(source_name, source_settings)
            raw = source.fetch(symbol, start, today, monthly=series.frequency == "monthly")
            raw = between(raw, start, None)
            previous = store.last_value_before(series.name, raw.index.min().date()) if len(raw) else None
            kept, dropped = cleaning.clean(raw, series, today, previous)
            if len(raw) and kept.empty:
                raise SourceError(source_name, f"all {len(raw)} row(s) rejected: {'; '.join(dropped)}")
            first_seen = today if series.frequency == "monthly" else None
            rows = store.write_observations(series.name, kept, source_name, first_seen=first_seen)
        except ClosebellError as exc:
            message = str(exc)
            result.errors.append(message)
            store.record_fetch(series.name, source_name, False, 0, message)
            log.warning("fetch %s from %s failed: %s", series.name, source_name, message)
            continue
        store.record_fetch(series.name, source_name, True, rows, "; ".join(dropped))
        result.ok, result.source, result.rows, result.dropped = True, source_name, rows, dropped
        if len(kept):
            newest = kept.index.max().date()
            result.last = max(newest, last) if last else newest
        return result
    return result
