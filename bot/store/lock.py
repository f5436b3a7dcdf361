"""One active instance per store.

SQLite: an exclusive `flock` on a file beside the database. The kernel drops
it when the process dies, however it dies, so a crash never leaves it stuck.
PostgreSQL: a session-level advisory lock on a connection held open for the
process's life. A second instance may run for availability: it stands by,
trying the lock every few seconds, and takes over when the first dies (its
connection closes and the server releases the lock).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import sqlalchemy as sa

from bot.errors import StoreError

log = logging.getLogger(__name__)

ADVISORY_KEY = 0x636C6F62  # "clob"


class InstanceLock:
    def __init__(self, store):
        self.store = store
        self._file = None
        self._conn = None

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
        if self._conn is None:
            self._conn = self.store.engine.connect()
        got = self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        self._conn.commit()
        return bool(got)

    def alive(self) -> bool:
        """Still holding the lock (the PostgreSQL connection may have dropped)."""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
            return True
        except (sa.exc.DBAPIError, StoreError):  # a dropped connection reads as StoreError (see connect.py)
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
            except (sa.exc.DBAPIError, StoreError):
                pass
            self._conn.close()
            self._conn = None
