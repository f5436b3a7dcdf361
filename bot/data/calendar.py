"""NYSE sessions and close times, from exchange_calendars (calendar XNYS).

Holidays, early closes (13:00 ET on 2024-07-03, 2024-11-29, 2024-12-24, ...)
and DST come from a maintained library rather than a hand-written list that
goes stale every year. Building that calendar costs about half a second, more
than everything else `check` does, so its answer (every session and its close)
is kept in a small file in the state directory, keyed by the library's version
and the month it was built in, and rebuilt when either changes. The rebuild runs
in a child process, so the library is never loaded into a long-lived daemon.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import warnings
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from bot.clock import ET, SYSTEM
from bot.settings.paths import state_dir

log = logging.getLogger(__name__)

FIRST = "1962-01-02"  # the shipped history starts here (DGS10)


class Calendar:
    """Sessions (naive midnight timestamps) and each session's close (UTC nanoseconds)."""

    def __init__(self, sessions: np.ndarray, closes: np.ndarray):
        self.sessions = pd.DatetimeIndex(sessions.astype("datetime64[ns]"), name="session")
        self._closes = closes.astype(np.int64)

    def index(self, day) -> int:
        """Position of the session on or before `day` (-1 if none)."""
        return int(self.sessions.searchsorted(pd.Timestamp(day).normalize(), side="right")) - 1

    def close_utc(self, i: int) -> pd.Timestamp:
        return pd.Timestamp(self._closes[i], tz="UTC")


def _build() -> Calendar:
    import exchange_calendars as xc  # deliberately lazy: ~0.5 s, only when the cached calendar is rebuilt
    with warnings.catch_warnings():  # exchange_calendars 4.13 uses a Series.values that pandas 3.1 deprecates
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XNYS", start=FIRST)
        sessions = cal.sessions.tz_localize(None).to_numpy().astype("datetime64[ns]")
        closes = cal.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    return Calendar(sessions, closes.astype(np.int64))


def _save(calendar: Calendar, path: Path) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, sessions=calendar.sessions.to_numpy(), closes=calendar._closes)
    tmp.replace(path)


def _load(path: Path) -> Calendar:
    with np.load(path) as cached:
        return Calendar(cached["sessions"], cached["closes"])


def _cache_path():
    version = metadata.version("exchange-calendars")
    # the real month, even in a replay: the cache follows the library's data, not the simulated date
    return state_dir() / "cache" / f"xnys-{version}-{SYSTEM.today_et():%Y-%m}.npz"


# The child's whole program: build, write the file named on its command line.
CHILD = "import sys; from pathlib import Path; from bot.data.calendar import _build, _save; _save(_build(), Path(sys.argv[1]))"


def _build_in_child(path: Path) -> Calendar | None:
    """Build the calendar in a child Python and read back the file it writes (None if that failed).

    exchange_calendars and what it imports stay ~6-9 MB resident in any process
    that ever loaded them, and the daemon would keep them for months to use once;
    the child's memory is given back when it exits.
    """
    root = str(Path(__file__).resolve().parents[2])  # the directory holding the `bot` package
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            return _load(path)
        log.debug("calendar child failed (exit %s): %s", done.returncode, done.stderr.strip()[-500:])
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        log.debug("calendar child failed: %s", exc)
    return None


@functools.lru_cache(maxsize=1)
def _calendar() -> Calendar:
    try:
        path = _cache_path()
        if path.is_file():
            return _load(path)
    except (OSError, ValueError, KeyError) as exc:
        log.debug("calendar cache unreadable (%s); rebuilding", exc)
        path = None
    calendar = _build_in_child(path) if path is not None else None
    if calendar is not None:
        return calendar
    calendar = _build()  # the child could not run (or write): build here
    if path is not None:
        try:
            _save(calendar, path)
        except OSError as exc:
            log.debug("calendar cache not written: %s", exc)
    return calendar


def sessions(start=None, end=None) -> pd.DatetimeIndex:
    """Trading sessions between start and end inclusive, as naive midnight timestamps."""
    all_sessions = _calendar().sessions
    lo = all_sessions.searchsorted(pd.Timestamp(start)) if start is not None else 0
    hi = all_sessions.searchsorted(pd.Timestamp(end), side="right") if end is not None else len(all_sessions)
    return all_sessions[lo:hi]


def is_session(day) -> bool:
    cal = _calendar()
    i = cal.index(day)
    return i >= 0 and cal.sessions[i] == pd.Timestamp(day).normalize()


def session_on_or_before(day) -> pd.Timestamp:
    """The session on `day`, or the last one before it."""
    cal = _calendar()
    i = cal.index(day)
    if i < 0:
        raise ValueError(f"{day} is before the calendar's first session ({FIRST})")
    return cal.sessions[i]


def session_on_or_after(day) -> pd.Timestamp:
    cal = _calendar()
    i = int(cal.sessions.searchsorted(pd.Timestamp(day).normalize(), side="left"))
    if i >= len(cal.sessions):
        raise ValueError(f"{day} is past the calendar's last session ({cal.sessions[-1]:%Y-%m-%d})")
    return cal.sessions[i]


def previous_session(day) -> pd.Timestamp:
    return session_on_or_before(pd.Timestamp(day).normalize() - pd.Timedelta(days=1))


def next_session(day) -> pd.Timestamp:
    return session_on_or_after(pd.Timestamp(day).normalize() + pd.Timedelta(days=1))


def close_time(day) -> datetime:
    """The session's close as an aware datetime in America/New_York (13:00 on early closes)."""
    cal = _calendar()
    i = cal.index(day)
    if i < 0 or cal.sessions[i] != pd.Timestamp(day).normalize():
        raise ValueError(f"{pd.Timestamp(day):%Y-%m-%d} is not a NYSE session")
    return cal.close_utc(i).tz_convert(ET).to_pydatetime()


def last_closed_session(now: datetime) -> pd.Timestamp:
    """The latest session whose close is at or before `now` (aware)."""
    session = session_on_or_before(now.astimezone(ET).date())
    if close_time(session) > now:
        session = previous_session(session)
    return session



def expects_value(series_def, session) -> bool:
    """Whether a series should have a value dated `session` (a NYSE session).

    Daily series expect one every session, except yields (`units: percent`) on
    US federal holidays when stocks trade: the bond market closes on Columbus
    Day and Veterans Day (2024-10-14, 2024-11-11), so no yield is published
    and the last one is carried forward. Monthly series never expect a value on
    a given session (their freshness follows the release calendar; see
    bot.data.freshness).
    """
    if series_def.frequency != "daily":
        return False
    if series_def.units == "percent":
        day = pd.Timestamp(session).normalize()
        return day not in federal_holidays(day.year)
    return True


@functools.lru_cache(maxsize=16)
def federal_holidays(year: int) -> frozenset:
    """US federal holidays of `year` (observed dates), as naive midnight timestamps."""
    return frozenset(USFederalHolidayCalendar().holidays(f"{year}-01-01", f"{year}-12-31"))
