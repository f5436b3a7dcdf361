"""Outbox rows: pending -> sending (claimed by one process, under a lease) -> sent | pending | failed.

A claim is one UPDATE that takes every row of a unit or none: a row another
process has claimed (status "sending") cannot be claimed again while its
claim holds, and only `recover` gives a claim back. Recording the result
clears the claim. Times are passed in (UTC or aware); nothing here reads a
clock.

A claim holds until its lease runs out, or until its process is known dead.
The claim records which process made it (`Holder`: host, pid, pid space,
start time). A process on the same host, in the same pid space, can tell for
certain that the holder is gone (no such pid, a zombie, or a pid reused by a
process started later), and then `recover` gives the rows back at once: a
bot killed mid-send and restarted in seconds sends them in seconds, not when
the lease runs out. A holder that may be alive elsewhere (another host, boot
or container; a process that cannot be looked at) keeps its lease: taking
its rows then could send an alert twice while it is still sending it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from bot.store.connect import insert, utc
from bot.store.schema import outbox

LISTED = (outbox.c.id, outbox.c.rule_id, outbox.c.session, outbox.c.channel, outbox.c.severity, outbox.c.status,
          outbox.c.attempts, outbox.c.next_attempt_at, outbox.c.last_error, outbox.c.created_at, outbox.c.sent_at,
          outbox.c.payload, outbox.c.owner, outbox.c.lease_until, outbox.c.owner_host, outbox.c.owner_pid,
          outbox.c.owner_space, outbox.c.owner_start)
PROC = Path("/proc")


@dataclass(frozen=True)
class Holder:
    """The process that holds a claim, as recorded with it.

    `space` says where `pid` means something: the kernel's boot id and the
    pid namespace ("BOOT/pid:[NS]"); a pid seen from another boot or container
    is another process. `start` is when the process started, in clock ticks
    since boot (field 22 of /proc/PID/stat): a pid reused by a later process
    has another. Both are None where /proc cannot say (not Linux): then only
    "no such pid" counts as gone.
    """
    host: str
    pid: int
    space: str | None = None
    start: int | None = None

    def line(self) -> str:
        return f"{self.host} pid {self.pid}"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in ticks) of `pid` from /proc, or None if /proc has no such process (or no /proc)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": comm may hold spaces and parentheses
    return fields[0], int(fields[19])


def _space() -> str | None:
    try:
        boot = (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
        return f"{boot}/{os.readlink(PROC / 'self' / 'ns' / 'pid')}"
    except OSError:
        return None


_THIS: dict[int, Holder] = {}  # by pid: a forked child is another holder


def this_process() -> Holder:
    """The process running this code, as a claim records it."""
    pid = os.getpid()
    if pid not in _THIS:
        space, stat = _space(), _stat(pid)
        _THIS[pid] = Holder(socket.gethostname(), pid, space if stat else None, stat[1] if stat and space else None)
    return _THIS[pid]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process, alive
        return True
    return True


def gone(holder: Holder | None) -> bool:
    """True only when `holder` is certainly not running: on this host, in this pid space, and its pid is free,
    a zombie, or a process started at another time. Anything it cannot vouch for is False (the lease decides).
    """
    if holder is None or holder.pid is None or holder.pid <= 0:
        return False
    me = this_process()
    if holder.host != me.host or holder.space != me.space:
        return False  # another host, boot or container (or a mix of /proc and none): may be alive
    if holder.start is None:
        return not _exists(holder.pid)
    stat = _stat(holder.pid)
    if stat is None:
        return not _exists(holder.pid)  # /proc may hide another user's processes (hidepid): ask the kernel
    state, start = stat
    return state in ("Z", "X", "x") or start != holder.start


def holder_of(row) -> Holder | None:
    """Who holds a row's claim, from its owner_* columns (None: claimed before claims recorded a process)."""
    if row.owner_host is None or row.owner_pid is None:
        return None
    return Holder(row.owner_host, row.owner_pid, row.owner_space, row.owner_start)


# Built once (every delivery runs them; building a statement costs twice what running it does here).
_NOW = sa.bindparam("b_now", type_=outbox.c.next_attempt_at.type)
_EXPIRED = sa.and_(outbox.c.status == "sending", sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= _NOW))
_RELEASED = dict(owner=None, lease_until=None, owner_host=None, owner_pid=None, owner_space=None, owner_start=None)
# Every claim held now, one row per claimer, and whether any lease ran out: what recover() judges.
HELD = (sa.select(outbox.c.owner, outbox.c.owner_host, outbox.c.owner_pid, outbox.c.owner_space,
                  outbox.c.owner_start, sa.func.max(sa.case((_EXPIRED, 1), else_=0)).label("expired"))
        .where(outbox.c.status == "sending")
        .group_by(outbox.c.owner, outbox.c.owner_host, outbox.c.owner_pid, outbox.c.owner_space,
                  outbox.c.owner_start))
RECOVER = outbox.update().where(_EXPIRED).values(status="pending", **_RELEASED)
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

    def claim(self, ids: list[int], owner: str, lease_until: datetime, due_by: datetime | None = None,
              holder: Holder | None = None) -> list:
        """Claim every row of `ids` for `owner` until `lease_until`, or none; the claimed rows as they now are.

        A row qualifies only while pending (and, given `due_by`, due by then): a
        row another process claimed, sent or rescheduled since it was listed is
        not taken, and then neither is the rest of the unit. The claim records
        `holder`, by default the process calling (the one about to send).
        """
        holder = holder or this_process()
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        where = [outbox.c.id.in_(ids), outbox.c.status == "pending"]
        if due_by is not None:
            where.append(outbox.c.next_attempt_at <= utc(due_by))
        stmt = (outbox.update().where(*where).values(status="sending", owner=owner, lease_until=utc(lease_until),
                                                      owner_host=holder.host, owner_pid=holder.pid,
                                                      owner_space=holder.space, owner_start=holder.start)
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
                         .values(status="sent", sent_at=utc(now), attempts=outbox.c.attempts + 1, last_error="", **_RELEASED))

    def retry(self, row_id: int, owner: str, error: str, next_at: datetime, failed: bool) -> bool:
        """A failed attempt by `owner`: pending again from `next_at`, or failed for good. False if no longer ours."""
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.owner == owner,
                                                      outbox.c.status == "sending")
                                .values(status="failed" if failed else "pending", last_error=error[:2000],
                                        next_attempt_at=utc(next_at), attempts=outbox.c.attempts + 1,
                                        **_RELEASED)).rowcount == 1

    def hold(self, ids: list[int], until: datetime) -> int:
        """Move pending rows' next attempt to `until` without counting an attempt (quiet hours)."""
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(outbox.update().where(outbox.c.id.in_(list(ids)), outbox.c.status == "pending")
                                .values(next_attempt_at=utc(until))).rowcount

    def recover(self, now: datetime) -> int:
        """Claims whose process is gone (`gone`) or whose lease ran out by `now` go back to pending.

        The alert may have gone out before the process died: it is sent again
        (at least once; at most the one unit that process had on the wire). A
        claim without a lease predates leases: expired. Taking over is
        conditional on the same owner still holding the row, so two processes
        recovering at once release it once, and a row claimed again since is
        left alone.
        """
        params = {"b_now": utc(now)}
        with self.engine.connect() as conn:  # every delivery asks first: a write only when there is one to undo
            held = conn.execute(HELD, params).all()
        expired = any(h.expired for h in held)
        dead = sorted({h.owner for h in held if not h.expired and h.owner is not None
                       and gone(holder_of(h))})
        if not expired and not dead:
            return 0
        with self.engine.begin() as conn:
            released = conn.execute(RECOVER, params).rowcount if expired else 0
            if dead:
                released += conn.execute(outbox.update().where(outbox.c.status == "sending", outbox.c.owner.in_(dead))
                                         .values(status="pending", **_RELEASED)).rowcount
            return released

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
