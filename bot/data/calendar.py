"""NYSE sessions and close times, from exchange_calendars (calendar XNYS).

Holidays, early closes (13:00 ET on 2024-07-03, 2024-11-29, 2024-12-24, ...) and
DST come from a maintained library rather than a hand-written list that goes
stale every year.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

ET = ZoneInfo("America/New_York")
FIRST = "1962-01-02"  # the shipped history starts here (DGS10)


@functools.lru_cache(maxsize=1)
def _calendar():
    import warnings
    import exchange_calendars as xc
    with warnings.catch_warnings():  # exchange_calendars 4.13 uses a Series.values that pandas 3.1 deprecates
        warnings.simplefilter("ignore")
        return xc.get_calendar("XNYS", start=FIRST)


def sessions(start=None, end=None) -> pd.DatetimeIndex:
    """Trading sessions between start and end inclusive, as naive midnight timestamps."""
    all_sessions = _calendar().sessions
    lo = all_sessions.searchsorted(pd.Timestamp(start)) if start is not None else 0
    hi = all_sessions.searchsorted(pd.Timestamp(end), side="right") if end is not None else len(all_sessions)
    return pd.DatetimeIndex(all_sessions[lo:hi], name="session").tz_localize(None).as_unit("ns")


def is_session(day) -> bool:
    return _calendar().is_session(pd.Timestamp(day).normalize())


def session_on_or_before(day) -> pd.Timestamp:
    """The session on `day`, or the last one before it."""
    return _calendar().date_to_session(pd.Timestamp(day).normalize(), direction="previous")


def session_on_or_after(day) -> pd.Timestamp:
    return _calendar().date_to_session(pd.Timestamp(day).normalize(), direction="next")


def previous_session(day) -> pd.Timestamp:
    return _calendar().previous_session(pd.Timestamp(day).normalize())


def next_session(day) -> pd.Timestamp:
    return _calendar().next_session(pd.Timestamp(day).normalize())


def close_time(day) -> datetime:
    """The session's close as an aware datetime in America/New_York (13:00 on early closes)."""
    utc = _calendar().session_close(pd.Timestamp(day).normalize())
    return utc.tz_convert(ET).to_pydatetime()


def last_closed_session(now: datetime) -> pd.Timestamp:
    """The latest session whose close is at or before `now` (aware)."""
    today = pd.Timestamp(now.astimezone(ET).date())
    session = session_on_or_before(today)
    if close_time(session) > now:
        session = previous_session(session)
    return session


def as_date(value) -> date:
    return pd.Timestamp(value).date()


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date; write YYYY-MM-DD, e.g. 2024-07-11") from None


def today_et(now: datetime | None = None) -> date:
    return (now or datetime.now(ET)).astimezone(ET).date()


ONE_DAY = timedelta(days=1)
