"""An APScheduler trigger that fires once per NYSE session, at its close plus an offset.

A cron expression cannot say "16:30 on normal days, 13:30 on early closes,
never on holidays": the close of each session comes from the trading calendar
(exchange_calendars), in America/New_York, so DST never shifts it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from apscheduler.triggers.base import BaseTrigger

from bot.data import calendar
from bot.data.calendar import ET


def run_time(session, offset_minutes: int) -> datetime:
    """When the job for `session` runs: its close plus the offset, in ET."""
    return calendar.close_time(session) + timedelta(minutes=offset_minutes)


def next_run(now: datetime, offset_minutes: int) -> tuple[pd.Timestamp, datetime]:
    """The first (session, run time) whose run time is after `now`."""
    session = calendar.session_on_or_after(now.astimezone(ET).date())
    while True:
        when = run_time(session, offset_minutes)
        if when > now:
            return session, when
        session = calendar.next_session(session)


def sessions_due(now: datetime, offset_minutes: int, after=None, limit: int = 5) -> list[pd.Timestamp]:
    """Sessions whose run time has passed, newer than `after`, oldest first, at most `limit` (newest kept)."""
    last = calendar.session_on_or_before(now.astimezone(ET).date())
    if run_time(last, offset_minutes) > now:
        last = calendar.previous_session(last)
    if limit <= 0:
        return []
    start = pd.Timestamp(after) + pd.Timedelta(days=1) if after else last - pd.Timedelta(days=366)
    due = calendar.sessions(start, last)
    return list(due[-limit:])


class SessionCloseTrigger(BaseTrigger):
    __slots__ = ("offset_minutes",)

    def __init__(self, offset_minutes: int = 30):
        self.offset_minutes = offset_minutes

    def get_next_fire_time(self, previous_fire_time, now):
        after = max(now, previous_fire_time + timedelta(seconds=1)) if previous_fire_time else now
        return next_run(after - timedelta(microseconds=1), self.offset_minutes)[1]

    def __str__(self):
        return f"nyse-close+{self.offset_minutes}min"

    def __repr__(self):
        return f"<SessionCloseTrigger offset={self.offset_minutes}min>"
