"""Tables and the versioned migrations that create them.

Each migration is a step from version N-1 to N, applied in one transaction, so
an upgraded bot opens an older store and brings it forward. Never edit a
released step: add a new one. A step builds the tables as they were at its
version (the outbox of v2 has no claim columns; v3 adds them), so a store
created today and one migrated from v1 end up the same.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from bot.errors import StoreError
from bot.store.connect import where

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x636C6F73  # PostgreSQL advisory lock id while migrating ("clos")

metadata = sa.MetaData()

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

def _observations_v1_columns() -> list:
    return [
        sa.Column("series", sa.String(64), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("release_date", sa.Date, nullable=True),  # when the period first became public (monthly series)
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    ]


# v5: a monthly period's first known vintage stays in `observations`, with the day its value became known
# (NULL: a daily value, known from its date; or a value of unknown vintage); each later vintage is a row of
# `revisions`. A revision adds a row there and never overwrites one (see bot.store.observations).
observations = sa.Table(
    "observations", metadata,
    *_observations_v1_columns(),
    sa.Column("realtime_start", sa.Date, nullable=True),
)

def _revisions_v5_columns() -> list:
    return [
        sa.Column("series", sa.String(64), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("realtime_start", sa.Date, primary_key=True),  # the day this vintage's value became known
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    ]


revisions = sa.Table("revisions", metadata, *_revisions_v5_columns())

fetches = sa.Table(
    "fetches", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False, default=0),  # rows new or changed
    sa.Column("message", sa.Text, nullable=False, default=""),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("session", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # running | done | failed
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)


def _outbox_v2_columns() -> list:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("session", sa.Date, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),  # the Alert as JSON
        sa.Column("chart", sa.LargeBinary, nullable=True),  # PNG, rendered once at enqueue time
        sa.Column("status", sa.String(16), nullable=False, index=True),  # pending | sending | sent | failed
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False, default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("rule_id", "session", "channel", name="outbox_once"),
    ]


# v3: a row being sent is claimed by one process (owner "host:pid:random") until lease_until (UTC);
# recovery returns only expired claims to pending. Both are NULL unless status is "sending".
OUTBOX_V3_COLUMNS = (("owner", sa.String(200)), ("lease_until", sa.DateTime(timezone=True)))

# v7: which process holds a claim, so a claim whose process died is taken over at once instead of when its
# lease runs out: its host name, pid, pid space ("boot id/pid namespace": a pid names one process only
# within it) and start time (clock ticks since boot, so a reused pid is not the owner). NULL unless "sending"
# (and for claims made before v7: their lease decides). See bot.store.outbox.Holder.
OUTBOX_V7_COLUMNS = (("owner_host", sa.String(255)), ("owner_pid", sa.Integer()), ("owner_space", sa.String(100)),
                     ("owner_start", sa.BigInteger()))

outbox = sa.Table(
    "outbox", metadata,
    *_outbox_v2_columns(),
    *(sa.Column(name, kind, nullable=True) for name, kind in OUTBOX_V3_COLUMNS + OUTBOX_V7_COLUMNS),
)

mutes = sa.Table(
    "mutes", metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
)

notices = sa.Table(  # unused since admin notices dedupe through the outbox key; kept: released in v2
    "notices", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)


def _v1(conn):
    sa.Table("observations", sa.MetaData(), *_observations_v1_columns()).create(conn)
    for table in (meta, fetches):
        table.create(conn)


def _v2(conn):
    sa.Table("outbox", sa.MetaData(), *_outbox_v2_columns()).create(conn)
    for table in (runs, mutes, notices):
        table.create(conn)


def _v3(conn):
    for name, kind in OUTBOX_V3_COLUMNS:
        conn.execute(sa.text(f"ALTER TABLE outbox ADD COLUMN {name} {kind.compile(dialect=conn.dialect)}"))


def _v4(conn):
    # the newest release date per series is then one index seek, not a read of every row
    # (Observations.last_release_dates, asked after every session)
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_observations_release ON observations (series, release_date)"))


def _v5(conn):
    """Vintages: `observations.realtime_start` and the `revisions` table.

    What the old rows' realtime_start is: the day the bot is known to have
    held that value. A daily row keeps NULL (one vintage, known from its date).
    A monthly row's value is the one stored when it was last written
    (`fetched_at`): if that was on its release date or the evening after (a
    live fetch; 20:00 ET is already the next day in UTC), the value is the
    first print and its realtime_start is the release date. Otherwise it was
    written later (a backfill from FRED's current vintage, `fetch --data-dir`
    of a file of revised values) and may well be revised, so its realtime_start
    is the day it was written: before that it still stands in for its period
    (the backtest is the same as before the migration), and the "revised
    values" notes say so instead of passing it off as a first print.
    Self-contained: the tables as they are at version 5, whatever comes later.
    """
    date_type = sa.Date().compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE observations ADD COLUMN realtime_start {date_type}"))
    sa.Table("revisions", sa.MetaData(), *_revisions_v5_columns()).create(conn)
    old = sa.Table("observations", sa.MetaData(), *_observations_v1_columns(),
                   sa.Column("realtime_start", sa.Date, nullable=True))
    rows = conn.execute(sa.select(old.c.series, old.c.date, old.c.release_date, old.c.fetched_at)
                        .where(old.c.release_date.is_not(None))).all()
    updates = []
    for series, day, release, fetched_at in rows:
        written = fetched_at.date()
        updates.append({"s": series, "d": day,
                        "r": release if written <= release + timedelta(days=1) else written})
    if updates:
        conn.execute(old.update().where(old.c.series == sa.bindparam("s"), old.c.date == sa.bindparam("d"))
                     .values(realtime_start=sa.bindparam("r")), updates)



# v6 (tune): parameter overrides made from the phone, their audit history, and the previews a button may
# apply. Self-contained (only its own tables) so it applies in whatever order the versions merge.
overrides = sa.Table(  # the overrides in force: one value per (rule, parameter)
    "overrides", metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("param", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("file_value", sa.Float, nullable=False),  # the file's value when applied: a different one wins
    sa.Column("previous", sa.Float, nullable=False),  # the value in force before (the file's or an override)
    sa.Column("who", sa.String(200), nullable=False),  # "telegram:CHAT" or "terminal:USER"
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

override_events = sa.Table(  # the audit history, never deleted: applied, reset, file-won, exported
    "override_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("param", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # the value in force after the event
    sa.Column("previous", sa.Float, nullable=True),  # the value in force before it
    sa.Column("file_value", sa.Float, nullable=True),  # the file's value at the time
    sa.Column("who", sa.String(200), nullable=False, default=""),
)

tune_previews = sa.Table(  # a preview shown with Apply / Cancel buttons; a button names its id
    "tune_previews", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("param", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("breaks", sa.Text, nullable=False, default=""),  # golden tests it breaks, one a line
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | applied | cancelled
)


def _v6(conn):
    for table in (overrides, override_events, tune_previews):
        table.create(conn)


def _v7(conn):
    for name, kind in OUTBOX_V7_COLUMNS:
        conn.execute(sa.text(f"ALTER TABLE outbox ADD COLUMN {name} {kind.compile(dialect=conn.dialect)}"))


MIGRATIONS = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]  # index i takes the store from version i to i + 1
VERSION = len(MIGRATIONS)


def version(conn) -> int:
    if not sa.inspect(conn).has_table("meta"):
        return 0
    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0


def migrate(engine) -> None:
    """Bring the store to VERSION, one transaction; PostgreSQL instances migrating at once take turns."""
    with engine.connect() as conn:  # every open but a store's first: current already, so no lock, no write
        if version(conn) == VERSION:
            return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        elif engine.dialect.name == "sqlite":
            # Python's sqlite3 runs DDL outside any transaction, so processes opening a fresh file at once
            # would each see version 0 and each create `meta`. Take the write lock first: they take turns
            # (busy_timeout), and the ones after the first find the schema made.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        current = version(conn)
        if current > VERSION:
            raise StoreError(f"the store is at schema version {current}, newer than this bot "
                             f"({VERSION}): upgrade Closebell")
        for step in range(current, VERSION):
            log.info("store: migrating schema %d -> %d", step, step + 1)
            try:
                MIGRATIONS[step](conn)
            except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
                # A table the step creates already exists, or one it changes is missing: the store was
                # written by another build of the bot. The transaction rolls back; nothing is changed.
                reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                raise StoreError(f"the store at {where(engine)} cannot be migrated from schema version {step} "
                                 f"to {step + 1} ({reason}): it was written by a different build of "
                                 "Closebell; point CLOSEBELL_HOME or DATABASE_URL at another store") from None
            _set_meta(conn, "schema_version", str(step + 1))


def _set_meta(conn, key, value):
    updated = conn.execute(meta.update().where(meta.c.key == key).values(value=value)).rowcount
    if not updated:
        conn.execute(meta.insert().values(key=key, value=value))
