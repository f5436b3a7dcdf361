"""Which series are stale, and since when: a pure judgement over dates.

Given each series' newest stored observation (and, for a monthly series, the
newest release date), and the session being evaluated, `stale` lists every
series whose data is older than its sources can explain. It reads nothing
and writes nothing; `status`, `check` and the daemon's admin notice all ask
it the same question.

The rules (one per frequency and units, read top to bottom in `ALLOWED_LAG`):

- **daily prices and indices** (`units: price` / `index`; ETFs): Yahoo and
  Nasdaq publish a session's close the same evening, so after the close of
  session S the series must hold S. One session behind is stale.
- **daily yields** (`units: percent`): Treasury publishes the same evening,
  but the FRED fallback a business day late, so one session of lag is normal;
  two sessions behind is stale (as of 2026-06-15, DGS10 ending 2026-06-11 is
  two sessions behind). Sessions on which the bond market is closed while
  stocks trade (Columbus Day, Veterans Day) are not counted; see
  `bot.data.calendar.expects_value`.
- **monthly** series (CPI): the BLS publishes about monthly (every 4-5 weeks),
  so a series is stale when more than `MONTHLY_MAX_DAYS` (40) days have passed
  since its last release date without a new one. Without a known release date
  (a source that does not give one), the value for month M is assumed
  released `ASSUMED_RELEASE_DAYS` (45) days after M's first day (CPI comes out
  mid-month M+1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from bot.data import calendar as nyse
from bot.data.calendar import expects_value

# sessions a daily series may lag the session being evaluated, by units
ALLOWED_LAG = {"price": 0, "index": 0, "percent": 1}
MONTHLY_MAX_DAYS = 40
ASSUMED_RELEASE_DAYS = 45


@dataclass(frozen=True)
class Stale:
    """One stale series: what is stored, what should be by now, and why that is wrong."""

    series: str
    last: date | None  # newest stored observation date (None: nothing stored)
    expected_by: date  # daily: the newest date that should be stored; monthly: when a new release was due
    sessions_behind: int | None  # daily: sessions with no value that should have one; monthly: None
    since: date  # the first session (daily) or day (monthly) on which the series was stale
    reason: str

    def line(self) -> str:
        return f"{self.series}: {self.reason}"


def stale(series_defs: dict, last_dates: dict, as_of, last_releases: dict | None = None,
          calendar=None) -> list[Stale]:
    """The stale series among `series_defs`, in their order.

    `last_dates`: series name -> newest stored observation date (missing or
    None: nothing stored). `last_releases`: monthly series name -> the release
    date of that newest value, where known. `as_of`: the session being
    evaluated, after its close (a non-session day means the session before it).
    `calendar`: the module or object giving `sessions(start, end)` and
    `session_on_or_before(day)` (default: bot.data.calendar).
    """
    calendar = calendar or nyse
    as_of = pd.Timestamp(calendar.session_on_or_before(as_of)).date()
    out = []
    for name, series in series_defs.items():
        last = last_dates.get(name)
        last = pd.Timestamp(last).date() if last is not None else None
        if series.frequency == "monthly":
            row = _monthly(name, last, (last_releases or {}).get(name), as_of)
        else:
            row = _daily(name, series, last, as_of, calendar)
        if row is not None:
            out.append(row)
    return out


def _daily(name, series, last: date | None, as_of: date, calendar) -> Stale | None:
    lag = ALLOWED_LAG.get(series.units, 0)
    # the sessions up to as_of that expect a value, newest last; enough of them to place `last`
    start = (last + timedelta(days=1)) if last is not None else as_of - timedelta(days=14)
    window = [s.date() for s in calendar.sessions(min(start, as_of - timedelta(days=14)), as_of)
              if expects_value(series, s)]
    if not window:
        return None
    expected_by = window[-1 - lag] if len(window) > lag else window[0]
    missing = [s for s in window if last is None or s > last]
    if last is not None and len(missing) <= lag:
        return None
    since = missing[lag] if len(missing) > lag else missing[-1]
    what = "yields may lag one session" if lag else "closes are due the evening of each session"
    if last is None:
        reason = f"nothing stored; expected data through {expected_by}"
        return Stale(name, None, expected_by, None, since, reason)
    behind = len(missing)
    reason = (f"latest {last}, expected {expected_by} ({behind} session{'s' if behind != 1 else ''} behind "
              f"as of {as_of}; {what})")
    return Stale(name, last, expected_by, behind, since, reason)


def _monthly(name, last: date | None, released, as_of: date) -> Stale | None:
    if last is None:
        return Stale(name, None, as_of, None, as_of, "nothing stored")
    if released is not None and not pd.isna(released):
        released, known = pd.Timestamp(released).date(), True
    else:
        released, known = last + timedelta(days=ASSUMED_RELEASE_DAYS), False
    due = released + timedelta(days=MONTHLY_MAX_DAYS)
    if as_of <= due:
        return None
    age = (as_of - released).days
    when = f"released {released}" if known else f"assumed released about {released}"
    reason = (f"latest value is for {last:%Y-%m} ({when}, {age} days ago); a new release was due by {due} "
              f"(releases come about monthly; stale after {MONTHLY_MAX_DAYS} days)")
    return Stale(name, last, due, None, due + timedelta(days=1), reason)
