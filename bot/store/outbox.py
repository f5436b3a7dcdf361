"""Outbox rows: pending -> sending (claimed by one process, under a lease) -> sent | pending | failed.

A claim is one UPDATE that takes every row of a unit or none: a row another
process has claimed (status "sending") cannot be claimed again until its lease
runs out, and only `recover` gives an expired claim back. Recording the result
clears the claim. Times are passed in (UTC or aware); nothing here reads a
clock.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bot.store.connect import insert, utc
from bot.store.schema import outbox

LISTED = (outbox.c.id, outbox.c.rule_id, outbox.c.session, outbox.c.channel, outbox.c.severity, outbox.c.status,
          outbox.c.attempts, outbox.c.next_attempt_at, outbox.c.last_error, outbox.c.created_at, outbox.c.sent_at,
          outbox.c.payload, outbox.c.owner, outbox.c.lease_until)


# Built once (every delivery runs them; building a statement costs twice what running it does here).
_NOW = sa.bindparam("b_now", type_=outbox.c.next_attempt_at.type)
_EXPIRED = sa.and_(outbox.c.status == "sending", sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= _NOW))
ANY_EXPIRED = sa.select(outbox.c.id).where(_EXPIRED).limit(1)
RECOVER = outbox.update().where(_EXPIRED).values(status="pending", owner=None, lease_until=None)
_PENDING = sa.select(outbox).where(outbox.c.status == "pending")
DUE = {True: _PENDING, False: _PENDING.where(outbox.c.next_attempt_at <= _NOW)}  # by ignore_backoff
DUE = {k: q.order_by(outbox.c.session, outbox.c.id).limit(sa.bindparam("b_limit")) for k, q in DUE.items()}


class Outbox:
    def __init__(self, engine):
        self.engine = engine

    def add(self, rows: list[dict], now: datetime) -> int:
        """Insert alerts not already queued for (rule, session, channel); return how many were new."""
        if not rows:
            return 0
        stmt = (insert(self.engine, outbox).on_conflict_do_nothing(index_elements=["rule_id", "session", "channel"])
                .returning(outbox.c.id))
        now = utc(now)
        full = [dict(r, status="pending", attempts=0, next_attempt_at=now, last_error="", created_at=now)
                for r in rows]
        with self.engine.begin() as conn:
            return sum(len(conn.execute(stmt, row).all()) for row in full)

    def due(self, now: datetime, limit: int = 1000, ignore_backoff: bool = False) -> list:
        """Pending rows whose next attempt is due (every pending row with `ignore_backoff`), oldest first."""
        with self.engine.connect() as conn:
            return conn.execute(DUE[bool(ignore_backoff)], {"b_now": utc(now), "b_limit": limit}).all()

    def claim(self, ids: list[int], owner: str, lease_until: datetime, due_by: datetime | None = None) -> list:
        """Claim every row of `ids` for `owner` until `lease_until`, or none; the claimed rows as they now are.

        A row qualifies only while pending (and, given `due_by`, due by then): a
        row another process claimed, sent or rescheduled since it was listed is
        not taken, and then neither is the rest of the unit.
        """
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        where = [outbox.c.id.in_(ids), outbox.c.status == "pending"]
        if due_by is not None:
            where.append(outbox.c.next_attempt_at <= utc(due_by))
        stmt = (outbox.update().where(*where).values(status="sending", owner=owner, lease_until=utc(lease_until))
                .returning(*outbox.c))
        with self.engine.connect() as conn:
            transaction = conn.begin()
            claimed = conn.execute(stmt).all()
            if len(claimed) != len(ids):
                transaction.rollback()
                return []
            transaction.commit()
        by_id = {row.id: row for row in claimed}
        return [by_id[i] for i in ids]

    def sent(self, row_id: int, now: datetime) -> None:
        """Delivered: recorded whoever holds the claim now, since the message is out."""
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(status="sent", sent_at=utc(now), attempts=outbox.c.attempts + 1, last_error="",
                                 owner=None, lease_until=None))

    def retry(self, row_id: int, owner: str, error: str, next_at: datetime, failed: bool) -> bool:
        """A failed attempt by `owner`: pending again from `next_at`, or failed for good. False if no longer ours."""
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.owner == owner,
                                                      outbox.c.status == "sending")
                                .values(status="failed" if failed else "pending", last_error=error[:2000],
                                        next_attempt_at=utc(next_at), attempts=outbox.c.attempts + 1,
                                        owner=None, lease_until=None)).rowcount == 1

    def hold(self, ids: list[int], until: datetime) -> int:
        """Move pending rows' next attempt to `until` without counting an attempt (quiet hours)."""
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.id.in_(list(ids)), outbox.c.status == "pending")
                                .values(next_attempt_at=utc(until))).rowcount

    def recover(self, now: datetime) -> int:
        """Claims whose lease ran out by `now` (their process died mid-send) go back to pending.

        The alert may have gone out before the process died: it is sent again
        (at least once). A claim without a lease predates leases: expired.
        """
        params = {"b_now": utc(now)}
        with self.engine.connect() as conn:  # every delivery asks first: a write only when a claim expired
            if conn.execute(ANY_EXPIRED, params).first() is None:
                return 0
        with self.engine.begin() as conn:
            return conn.execute(RECOVER, params).rowcount

    def requeue_failed(self, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.status == "failed")
                                .values(status="pending", next_attempt_at=utc(now), attempts=0)).rowcount

    def rows(self, statuses=None, limit: int = 1000) -> list:
        query = sa.select(*LISTED)
        if statuses:
            query = query.where(outbox.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).all()

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all())
