"""Tables and the versioned migrations that create them.

Each migration is a step from version N-1 to N, applied in one transaction, so
an upgraded bot opens an older store and brings it forward. Never edit a
released step: add a new one.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

observations = sa.Table(
    "observations", metadata,
    sa.Column("series", sa.String(64), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("release_date", sa.Date, nullable=True),  # when it became public (monthly series)
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
)

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
    sa.Column("status", sa.String(16), nullable=False),  # running | done
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)

outbox = sa.Table(
    "outbox", metadata,
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
)

mutes = sa.Table(
    "mutes", metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
)

notices = sa.Table(  # one-off messages to the admin (late data, bad rules) sent at most once per key
    "notices", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)


def _v1(conn):
    for table in (meta, observations, fetches):
        table.create(conn)


def _v2(conn):
    for table in (runs, outbox, mutes, notices):
        table.create(conn)


MIGRATIONS = [_v1, _v2]  # index i takes the store from version i to i + 1
VERSION = len(MIGRATIONS)
