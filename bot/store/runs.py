"""Run records: one per session the bot evaluated, running then done (or failed, with its reason),
stamped with the time given. Only a done run counts as done: catch-up evaluates a failed session again."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from bot.store.connect import insert, utc
from bot.store.schema import runs


class Runs:
    def __init__(self, engine):
        self.engine = engine

    def started(self, session: date, now: datetime, late: bool) -> None:
        now = utc(now)
        stmt = insert(self.engine, runs).on_conflict_do_update(
            index_elements=["session"], set_={"status": "running", "started_at": now})
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"session": session, "status": "running", "started_at": now, "late": late,
                                 "detail": ""}])

    def finished(self, session: date, now: datetime, detail: str, status: str = "done") -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.session == session)
                         .values(status=status, finished_at=utc(now), detail=detail[:4000]))

    def last_done(self) -> date | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(runs.c.session)).where(runs.c.status == "done")).scalar()

    def recent(self, limit: int = 10) -> list:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs).order_by(runs.c.session.desc()).limit(limit)).all()
