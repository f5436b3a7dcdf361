"""Run records: one per session the bot evaluated, running then done (or failed, with its reason),
stamped with the time given. Only a done run counts as done: catch-up evaluates a failed session again."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from bot.store.connect import insert, utc
from bot.store.schema import runs


# Built once: constructing a statement costs twice what running it does, and replay runs these per session.
FINISHED = (runs.update().where(runs.c.session == sa.bindparam("b_session", type_=runs.c.session.type))
            .values(status=sa.bindparam("b_status"), finished_at=sa.bindparam("b_finished_at"),
                    detail=sa.bindparam("b_detail")))
LAST_DONE = sa.select(sa.func.max(runs.c.session)).where(runs.c.status == "done")


class Runs:
    def __init__(self, engine):
        self.engine = engine
        stmt = insert(engine, runs)
        self._started = stmt.on_conflict_do_update(
            index_elements=["session"], set_={"status": "running", "started_at": stmt.excluded.started_at})

    def started(self, session: date, now: datetime, late: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._started, {"session": session, "status": "running", "started_at": utc(now),
                                         "late": late, "detail": ""})

    def finished(self, session: date, now: datetime, detail: str, status: str = "done") -> None:
        with self.engine.begin() as conn:
            conn.execute(FINISHED, {"b_session": session, "b_status": status, "b_finished_at": utc(now),
                                    "b_detail": detail[:4000]})

    def last_done(self) -> date | None:
        with self.engine.connect() as conn:
            return conn.execute(LAST_DONE).scalar()

    def recent(self, limit: int = 10) -> list:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs).order_by(runs.c.session.desc()).limit(limit)).all()
