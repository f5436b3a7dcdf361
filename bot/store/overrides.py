"""Parameter overrides made from the phone, the audit history of every change, and the open previews.

An override sets one parameter of one rule (`small-cap-trap lead = 6`) on top
of the rules file. It remembers the file's value when it was applied: when the
file later says something else, the file wins (`retire`, kind "file-won"), so a
committed edit is never silently shadowed. Nothing here is ever forgotten: each
apply, reset, "file won" and export adds a row to the history, which is only
read, never pruned (a handful of rows a year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bot.clock import stored_time
from bot.store.connect import insert, utc
from bot.store.schema import override_events, overrides, tune_previews


@dataclass(frozen=True)
class Override:
    rule_id: str
    param: str
    value: float
    file_value: float  # the file's value when it was applied
    previous: float  # the value in force before it
    who: str
    at: datetime


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str  # applied | reset | file-won | exported
    rule_id: str
    param: str
    value: float | None  # in force after the event
    previous: float | None  # in force before it
    file_value: float | None
    who: str


@dataclass(frozen=True)
class Preview:
    id: int
    rule_id: str
    param: str
    value: float
    breaks: str
    who: str
    created_at: datetime
    state: str  # open | applied | cancelled


def _record(kind, row, stamp: str):
    fields = dict(row._mapping)
    fields[stamp] = stored_time(fields[stamp])
    return kind(**fields)


class Overrides:
    def __init__(self, engine):
        self.engine = engine

    def current(self) -> list:
        """Every override in force, by rule then parameter."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(overrides).order_by(overrides.c.rule_id, overrides.c.param)).all()
        return [_record(Override, row, "at") for row in rows]

    def set(self, rule_id: str, param: str, value: float, file_value: float, previous: float, who: str,
            now: datetime) -> None:
        """Apply (or replace) the override and record it, in one transaction."""
        stmt = insert(self.engine, overrides)
        fields = {"value": value, "file_value": file_value, "previous": previous, "who": who[:200],
                  "at": utc(now)}
        stmt = stmt.on_conflict_do_update(index_elements=["rule_id", "param"],
                                          set_={k: getattr(stmt.excluded, k) for k in fields})
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"rule_id": rule_id, "param": param, **fields}])
            self._event(conn, "applied", rule_id, param, value, previous, file_value, who, now)

    def retire(self, kind: str, rule_id: str, param: str | None, file_values: dict, who: str,
               now: datetime) -> list:
        """Remove the overrides of `rule_id` (one `param`, or all) and record each as `kind` (reset,
        file-won, exported) with the file's value (`file_values`: param -> value) now in force.
        Returns the rows removed; two processes retiring the same one record it once."""
        with self.engine.begin() as conn:
            query = sa.select(overrides).where(overrides.c.rule_id == rule_id)
            if param is not None:
                query = query.where(overrides.c.param == param)
            removed = []
            for row in conn.execute(query).all():
                gone = conn.execute(overrides.delete().where(overrides.c.rule_id == row.rule_id,
                                                             overrides.c.param == row.param)).rowcount
                if gone:
                    file_value = file_values.get(row.param, row.file_value)
                    self._event(conn, kind, row.rule_id, row.param, file_value, row.value, file_value, who, now)
                    removed.append(_record(Override, row, "at"))
        return removed

    def history(self, limit: int = 1000) -> list:
        """The audit history, oldest first (the latest `limit` events)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(override_events).order_by(override_events.c.id.desc())
                                .limit(limit)).all()
        return [_record(Event, row, "at") for row in reversed(rows)]

    @staticmethod
    def _event(conn, kind, rule_id, param, value, previous, file_value, who, now):
        conn.execute(override_events.insert().values(at=utc(now), kind=kind, rule_id=rule_id, param=param,
                                                     value=value, previous=previous, file_value=file_value,
                                                     who=who[:200]))

    # -- previews: what an Apply button applies ----------------------------------------------------

    def preview_add(self, rule_id: str, param: str, value: float, breaks: str, who: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(tune_previews.insert().values(
                rule_id=rule_id, param=param, value=value, breaks=breaks, who=who[:200], created_at=utc(now),
                state="open"))
            return int(result.inserted_primary_key[0])

    def preview(self, preview_id: int):
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tune_previews).where(tune_previews.c.id == preview_id)).first()
        return None if row is None else _record(Preview, row, "created_at")

    def preview_close(self, preview_id: int, state: str) -> bool:
        """Move an open preview to `state` (applied, cancelled); False when it was not open any more,
        so a second press (or a second process) never applies it twice."""
        with self.engine.begin() as conn:
            return conn.execute(tune_previews.update().where(tune_previews.c.id == preview_id,
                                                             tune_previews.c.state == "open")
                                .values(state=state)).rowcount == 1
