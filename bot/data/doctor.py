"""Ask every series' primary and fallback for the last few sessions, and say which feed is broken.

`probe` is what `closebell sources` prints: for each series and each of
its sources, how many rows came back for the window, the newest date, how
long the answer took, the error if any, and whether primary and fallback
agree on the dates both have. A user sees a broken feed before an evening is
missed, instead of after.

Agreement, per units (`TOLERANCE`): prices and indices within 0.5% of each
other, yields within 0.02 points. One disagreeing date is still agreement
(noted): Nasdaq's closes are as traded while Yahoo's are adjusted for
dividends, so on an ex-dividend date inside the window the two differ by the
dividend; more than one disagreeing date is a disagreement.

Nothing is stored: a probe reads sources and cleans what they say (the same
`bot.data.clean` as `fetch`) but never writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import pandas as pd

from bot.clock import SYSTEM, Clock
from bot.data import calendar
from bot.data import clean as cleaning
from bot.data.fetch import Reach, host_of, network_hosts, tcp_probe
from bot.data.sources import get_source
from bot.errors import ClosebellError, SourceUnreachable

# units -> (kind, tolerance): "relative" compares a/b - 1, "points" compares a - b
TOLERANCE = {"price": ("relative", 0.005), "index": ("relative", 0.005), "percent": ("points", 0.02)}
ALLOWED_DISAGREEMENTS = 1


@dataclass(frozen=True)
class SourceCheck:
    """One source of one series, as it answered for the window."""

    series: str
    role: str  # "primary" or "fallback"
    source: str
    symbol: str
    rows: int  # rows kept after cleaning, in the window
    last: date | None  # newest date it gave (None: nothing)
    latency: float  # seconds the answer took
    error: str | None  # None when the source answered with data
    agree: bool | None  # primary and fallback agree on their common dates (None: nothing to compare)
    note: str = ""  # what disagreed, or why agreement could not be judged
    outage: str = ""  # the network outage this check ran into (said on this check only; see bot.data.fetch)
    values: pd.Series = field(default=None, repr=False, compare=False)  # the cleaned values, for the caller

    @property
    def ok(self) -> bool:
        return self.error is None


def window(sessions: int, clock: Clock = SYSTEM, monthly: bool = False) -> tuple[date, date]:
    """(start, end): the last `sessions` sessions closed by the clock's now (months for a monthly series)."""
    end = calendar.last_closed_session(clock.now())
    if monthly:
        return (end - timedelta(days=31 * sessions)).date().replace(day=1), end.date()
    start = calendar.sessions(end - timedelta(days=7 * sessions + 14), end)[-sessions]
    return start.date(), end.date()


def probe(series_defs, settings, names=None, sessions: int = 10, clock: Clock = SYSTEM, timer=time.monotonic,
          network_probe=tcp_probe) -> list[SourceCheck]:
    """A SourceCheck per series and source (primary, then fallback), in the order of `names` (default: all)."""
    names = list(names or series_defs)
    reach = Reach(network_hosts(series_defs, names, settings), network_probe)
    out: list[SourceCheck] = []
    for name in names:
        series = series_defs[name]
        start, end = window(sessions, clock, monthly=series.frequency == "monthly")
        checks = [_check(series, role, ref, settings, start, end, reach, timer)
                  for role, ref in zip(("primary", "fallback"), series.chain)]
        out += _with_agreement(series, checks)
    return out


def _check(series, role, ref, settings, start, end, reach: Reach, timer) -> SourceCheck:
    source_settings = settings.sources.get(ref.source) if settings is not None else None
    source = get_source(ref.source, source_settings)
    host = host_of(source.base_url)
    base = SourceCheck(series.name, role, ref.source, ref.symbol, 0, None, 0.0, None, None)
    skip = reach.skip_reason(host) if host else None
    if skip:
        return replace(base, error=skip)
    began = timer()
    try:
        raw = source.fetch(ref.symbol, start, end, monthly=series.frequency == "monthly")
        kept, _ = cleaning.clean(raw, series, end, origin=ref.source)
    except ClosebellError as exc:
        outage = ""
        if isinstance(exc, SourceUnreachable):
            outage = reach.failed(host)
        return replace(base, latency=timer() - began, error=str(exc), outage=outage)
    latency = timer() - began
    if kept.empty:
        return replace(base, latency=latency, error=f"no rows between {start} and {end}")
    return replace(base, rows=len(kept), last=kept.index.max().date(), latency=latency, values=kept["value"])


def _with_agreement(series, checks: list[SourceCheck]) -> list[SourceCheck]:
    if len(checks) < 2:
        return [replace(c, note="no fallback to compare with") for c in checks]
    primary, fallback = checks
    if not (primary.ok and fallback.ok):
        return [replace(c, note="cannot compare: a source failed") for c in checks]
    a, b = primary.values.align(fallback.values, join="inner")
    if a.empty:
        return [replace(c, note="no date in common") for c in checks]
    kind, tolerance = TOLERANCE.get(series.units, ("relative", 0.005))
    gap = (a / b - 1.0).abs() if kind == "relative" else (a - b).abs()
    off = gap[gap > tolerance + 1e-12]
    shown = ", ".join(f"{d:%Y-%m-%d} {a[d]:g} vs {b[d]:g}" for d in off.index[:3])
    limit = f"{tolerance:.1%}" if kind == "relative" else f"{tolerance:g} points"
    if off.empty:
        agree, note = True, f"{len(a)} common date(s) within {limit}"
    elif len(off) <= ALLOWED_DISAGREEMENTS:
        agree, note = True, (f"{len(a)} common date(s); {shown} differ by more than {limit} "
                             "(one date allowed: unadjusted closes differ by the dividend on an ex-date)")
    else:
        agree, note = False, f"{len(off)} of {len(a)} common date(s) differ by more than {limit}: {shown}"
    return [replace(c, agree=agree, note=note) for c in checks]
