"""Opening a store: which database, the engine, and database failures said as a StoreError.

A damaged SQLite file, a directory that cannot be written, an unreachable
PostgreSQL server: each becomes one line a user can act on (the CLI exits 4),
naming the file or the host, never the password. The translation hooks into
the engine, so it holds for the first statement after opening as much as for
opening itself.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from datetime import datetime, timezone

import sqlalchemy as sa

from bot.errors import StoreError
from bot.settings.paths import state_dir


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("DATABASE_URL")
    if url:
        # Heroku-style URLs say postgres://; SQLAlchemy wants a driver
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://"):]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'closebell.db'}"


def create_engine(url: str) -> sa.Engine:
    kwargs = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    elif url.startswith("postgresql"):
        # A connection the server dropped (restart, pg_terminate_backend, a failover) is noticed when it is
        # taken from the pool and replaced, so the statement after a fault runs on a fresh connection
        # instead of failing: the send recorded, the session finished. One round trip per checkout.
        kwargs["pool_pre_ping"] = True
        if "application_name" not in url:
            # who each backend is, in pg_stat_activity: `status` and an operator (or a test) can tell the
            # bot's connections apart; bot.store.lock renames its own to say leader or standby
            kwargs["connect_args"] = {"application_name": application_name()}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:
        # The message may quote the URL, password and all: name the part that is wrong, never the URL.
        reason = "no driver for it here: Closebell speaks PostgreSQL" if isinstance(exc, ImportError) else _url_fault(url, exc)
        raise StoreError(f"DATABASE_URL cannot be used ({reason}); write it as "
                         "postgresql://USER:PASSWORD@HOST:5432/DATABASE") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "handle_error", _as_store_error)
    return engine


def application_name(role: str = "") -> str:
    """`closebell[-ROLE] HOST:PID`, at most 63 bytes (PostgreSQL's limit) even once the lock appends `@SINCE` to
    a role's name (11 bytes: '@' and the epoch seconds): the host is cut, never the pid or the time."""
    prefix = f"closebell-{role}" if role else "closebell"
    tail = f":{os.getpid()}"
    host = socket.gethostname()[:63 - len(prefix) - 1 - len(tail) - (11 if role else 0)]
    return f"{prefix} {host}{tail}"


def _url_fault(url: str, exc: Exception) -> str:
    """What is wrong with a database URL, in words that never repeat the URL (it holds a password)."""
    if "port" in str(exc) or "invalid literal for int" in str(exc):
        return "its port is not a number; a host in brackets needs its closing ']'"
    if "://" not in url:
        return "it has no scheme such as postgresql://"
    return "it does not parse as a URL"


def where(engine) -> str:
    """The store as a user knows it: the SQLite file, or host:port/database of PostgreSQL (no password)."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        return url.database or ":memory:"
    port = f":{url.port}" if url.port else ""
    user = f"{url.username}@" if url.username else ""
    return f"{user}{url.host or 'localhost'}{port}/{url.database or ''}"


def _as_store_error(ctx):
    """SQLAlchemy's handle_error hook: raise a StoreError for failures a user can fix, leave bugs alone."""
    if getattr(ctx, "is_pre_ping", False):  # the pool's ping found a dropped connection: it reconnects itself
        return
    engine = ctx.engine
    original = ctx.original_exception
    reason = _one_line(original, engine)
    if engine.dialect.name == "sqlite":
        if isinstance(original, sqlite3.OperationalError):
            if ctx.connection is None:  # could not open the file at all
                raise StoreError(f"cannot open the store at {where(engine)}: {reason}") from None
            if "locked" in reason:
                raise StoreError(f"the store at {where(engine)} stayed locked by another process: {reason}") \
                    from None
            return
        if type(original) is sqlite3.DatabaseError:  # "file is not a database", "disk image is malformed"
            raise StoreError(f"the store at {where(engine)} is not a SQLite database (or is damaged): {reason}") \
                from None
        return
    if ctx.connection is None or ctx.is_disconnect:
        raise StoreError(f"cannot reach the PostgreSQL store at {where(engine)}: {reason}") from None


def _one_line(exc, engine) -> str:
    text = " ".join(str(exc).split())
    password = engine.url.password
    return text.replace(password, "***") if password else text


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def insert(engine, table):
    """INSERT with the dialect's ON CONFLICT support (both SQLite and PostgreSQL have it)."""
    # deliberately lazy: each dialect's module only for the database in use (create_engine loaded it already)
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert  # deliberately lazy: as above
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # deliberately lazy: as above
    return dialect_insert(table)


def utc(value: datetime) -> datetime:
    """Every datetime is stored in UTC: SQLite keeps no offset, so a local time would read back wrong."""
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
