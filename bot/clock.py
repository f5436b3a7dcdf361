"""The one place Closebell reads the time.

Live code gets `SystemClock`; `replay` and tests get a `SimulatedClock` they
move by hand, so mutes, run records and "now" decisions in a replay are
stamped in simulated time, and a test can put the bot at 16:31 ET on any day.
Everything that needs the time takes a clock; nothing else in `bot/` calls
`datetime.now`, `date.today` or `time.time` for a domain decision (a test
greps for it).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")


class Clock:
    """`now()` is an aware UTC datetime; the helpers derive everything else from it."""

    def now(self) -> datetime:
        raise NotImplementedError

    def now_et(self) -> datetime:
        return self.now().astimezone(ET)

    def today_et(self) -> date:
        return self.now_et().date()


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimulatedClock(Clock):
    """A clock that only moves when told to (replay, tests)."""

    def __init__(self, start: datetime):
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = _aware(when)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def stored_time(value: datetime | None) -> datetime | None:
    """A time read back from the store, aware: SQLite returns naive datetimes for timezone-aware
    columns, and every time is stored in UTC (bot.store.connect.utc)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("SimulatedClock needs an aware datetime (e.g. tzinfo=ET)")
    return when.astimezone(timezone.utc)


SYSTEM = SystemClock()
