"""Mutes: a rule muted until a moment. Whether a mute holds is always asked for a given `now`,
so replay (simulated time) and the live bot (wall clock) each see their own expiries."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bot.clock import stored_time
from bot.store.connect import insert, utc
from bot.store.schema import mutes


ACTIVE = sa.select(mutes.c.rule_id, mutes.c.until).where(mutes.c.until > sa.bindparam("b_now", type_=mutes.c.until.type))


class Mutes:
    def __init__(self, engine):
        self.engine = engine

    def mute(self, rule_id: str, until: datetime) -> None:
        stmt = insert(self.engine, mutes)
        stmt = stmt.on_conflict_do_update(index_elements=["rule_id"], set_={"until": stmt.excluded.until})
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"rule_id": rule_id, "until": utc(until)}])

    def unmute(self, rule_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(mutes.delete().where(mutes.c.rule_id == rule_id)).rowcount > 0

    def active(self, now: datetime) -> dict[str, datetime]:
        """Rules muted at `now`, with when each mute ends (aware UTC)."""
        with self.engine.connect() as conn:
            rows = conn.execute(ACTIVE, {"b_now": utc(now)}).all()
        return {rid: stored_time(until) for rid, until in rows}
