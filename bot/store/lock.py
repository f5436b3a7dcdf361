"""One active instance per store, and a fence so that only the active one sends.

SQLite: an exclusive `flock` on a file beside the database. The kernel drops
it when the process dies, however it dies, so a crash never leaves it stuck; a
second instance is refused.

PostgreSQL: a session-level advisory lock on a connection held open for the
process's life. A second instance may run for availability: it stands by,
trying the lock every few seconds, and takes over when the first one's lock
connection ends (the process died, or the server terminated that backend:
the server releases the lock with it).

Holding the lock once is not enough to send: the lock connection can be
terminated while the leader is mid-batch, and a standby takes over at once.
So the leader hands its senders (in process, or a session's child process) a
`Fence`: the backend pid of its lock connection and that backend's start time
(a pid is reused, the pair never is). Before each delivery batch and each
claim, a sender asks pg_locks whether that backend still holds the advisory
lock; when it does not, the sender stops at once. The check reads the server's
own lock table, so it holds for senders on other connections and in other
processes alike, and needs no table of its own.

Who leads is said by the lock connection's `application_name`
(`closebell-leader HOST:PID@SINCE`, `closebell-standby ...`): `status` reads it
from pg_stat_activity joined with pg_locks. A leaders table with heartbeats
would need a writer, a migration and an expiry, and would show a dead leader
until the expiry; pg_stat_activity forgets a backend the moment it ends, so
what `status` shows is what the server knows now.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from bot.errors import StoreError
from bot.store.connect import application_name

log = logging.getLogger(__name__)

ADVISORY_KEY = 0x636C6F62  # "clob"

# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
_KEY_MATCH = ("l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
              f"AND l.classid::bigint = {ADVISORY_KEY >> 32} AND l.objid::bigint = {ADVISORY_KEY & 0xFFFFFFFF} "
              "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")
HELD = sa.text(f"SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_KEY_MATCH} "
               "AND l.pid = :pid AND a.backend_start = :started")
INSTANCES = sa.text("SELECT a.application_name, "
                    f"EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND {_KEY_MATCH}) AS leads "
                    "FROM pg_stat_activity a WHERE a.datname = current_database() "
                    "AND (a.application_name LIKE 'closebell-leader %' "
                    "OR a.application_name LIKE 'closebell-standby %') ORDER BY a.backend_start")
_RENAME = sa.text("SELECT set_config('application_name', :name || '@' || floor(extract(epoch FROM now()))::bigint, "
                  "false)")
_ME = sa.text("SELECT pg_backend_pid(), backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")

_FAULTS = (sa.exc.SQLAlchemyError, StoreError)  # a dropped connection reads as StoreError (see connect.py)


@dataclass(frozen=True)
class Fence:
    """The leader's lock as its senders check it (picklable: a session's child process gets it)."""

    pid: int  # the lock connection's backend
    started: datetime  # that backend's start: with the pid, one backend ever

    def held(self, store) -> bool:
        """The lock is still this backend's. A store that cannot answer raises StoreError."""
        with store.engine.connect() as conn:
            return conn.execute(HELD, {"pid": self.pid, "started": self.started}).first() is not None


@dataclass(frozen=True)
class Instance:
    """A `run` on this PostgreSQL store, as pg_stat_activity and pg_locks show it now."""

    role: str  # "leader" | "standby"
    host: str
    pid: int
    since: datetime | None  # leading since / standing by since (UTC)

    def line(self) -> str:
        since = f" since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        return f"{self.role}: {self.host} pid {self.pid}{since}"


def instances(store) -> list[Instance] | None:
    """The leader and any standby of this store, leader first (PostgreSQL); None on SQLite, whose flock lets
    one instance run and refuses the rest."""
    if store.dialect != "postgresql":
        return None
    with store.engine.connect() as conn:
        rows = conn.execute(INSTANCES).all()
    out = []
    for name, leads in rows:
        _, _, who = name.partition(" ")
        who, _, since = who.partition("@")
        host, _, pid = who.rpartition(":")
        when = datetime.fromtimestamp(int(since), timezone.utc) if since.isdigit() else None
        out.append(Instance("leader" if leads else "standby", host, int(pid) if pid.isdigit() else 0, when))
    return sorted(out, key=lambda i: i.role != "leader")


class InstanceLock:
    def __init__(self, store):
        self.store = store
        self._file = None
        self._conn = None
        self.fence: Fence | None = None  # while leading on PostgreSQL

    @property
    def shared(self) -> bool:
        """True when other instances may stand by (PostgreSQL) rather than be refused (SQLite)."""
        return self.store.dialect == "postgresql"

    def acquire(self) -> bool:
        if self.shared:
            return self._acquire_advisory()
        return self._acquire_file()

    def _acquire_file(self) -> bool:
        database = Path(self.store.engine.url.database or "closebell.db")
        path = database.with_suffix(database.suffix + ".lock")
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreError(f"another Closebell instance (pid {holder}) is running against {database}; "
                             "stop it first, or point CLOSEBELL_HOME at another directory") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return True

    def _acquire_advisory(self) -> bool:
        """Try the lock once, on the held connection (a fresh one after a fault). A StoreError when the
        server cannot be reached."""
        fresh = self._conn is None
        if fresh:
            self._conn = self.store.engine.connect()
        try:
            got = bool(self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar())
            if got or fresh:  # say what this connection is: leader from now, or standing by from now
                self._conn.execute(_RENAME, {"name": application_name("leader" if got else "standby")})
            if got:
                pid, started = self._conn.execute(_ME).one()
                self.fence = Fence(pid, started)
            self._conn.commit()
        except _FAULTS:
            self._drop()
            raise
        return got

    def alive(self) -> bool:
        """Still holding the lock (the PostgreSQL connection may have dropped: then it is let go)."""
        if self._file is not None:
            return True
        if self._conn is None or self.fence is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
            return True
        except _FAULTS:
            self._drop()
            return False

    def release(self):
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
            except _FAULTS:  # the connection is gone, and the lock with it
                pass
            self._drop()

    def _drop(self):
        """Let the lock connection go; one that failed is discarded, never handed back to the pool."""
        conn, self._conn, self.fence = self._conn, None, None
        if conn is None:
            return
        try:
            conn.invalidate()
        except _FAULTS:
            pass
        try:
            conn.close()
        except _FAULTS:
            pass
