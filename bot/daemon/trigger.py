"""An APScheduler trigger that fires once per NYSE session, at its close plus an offset.

The arithmetic (run time, next run, sessions due) is bot.app.schedule's, shared
with the app; this module only adapts it to APScheduler's trigger interface.
"""

from __future__ import annotations

from datetime import timedelta

from apscheduler.triggers.base import BaseTrigger

from bot.app.schedule import next_run


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
