"""When the job for a session runs: its NYSE close plus the settings' offset, in New York time.

Pure calendar arithmetic on a `now` passed in, shared by the app (catch-up,
`status`), the daemon's APScheduler trigger (bot.daemon.trigger), the `run`
banner and replay. A cron expression cannot say "16:30 on normal days, 13:30
on early closes, never on holidays": the close of each session comes from the
trading calendar (bot.data.calendar), so DST never shifts it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from bot.clock import ET
from bot.data import calendar


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
