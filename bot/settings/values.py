"""The configuration as the running bot reads it: plain read-only records, no pydantic.

`bot.settings.models` declares what a valid file is (pydantic: types, limits,
did-you-mean, the JSON Schema); once a file validated, `models.freeze` copies
it into these records. They carry only what was validated, so the rest of
the bot reads `settings.notify.quiet_hours` or `series.move_limit()` the same
whether the configuration was just parsed or read back from the
configuration cache (bot.settings.cache). Why a second set of classes: a
cache hit then needs neither pydantic (~80 ms of imports) nor the models,
which is most of what a `check` costs above the import floor.

A test builds settings through the pydantic models (`Settings(notify={...})`)
and hands them to the same code: both kinds answer the same attributes and
methods (the methods live once, in the mixins here).
"""

from __future__ import annotations

DEFAULT_MOVE_LIMIT = {"price": 25.0, "percent": 1.0, "index": 5.0}


class Record:
    """Read-only attributes, equal by value and type; built by `models.freeze` from a validated model."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only (the configuration comes from its files)")

    __delattr__ = __setattr__

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class SeriesMethods:
    """What a series answers besides its fields (shared by the model and the record)."""

    @property
    def primary(self) -> SourceRef:
        return SourceRef(source=self.source, symbol=self.symbol or self.name)

    @property
    def chain(self) -> list[SourceRef]:
        """Sources to try in order."""
        chain = [self.primary]
        if self.fallback:
            chain.append(SourceRef(source=self.fallback.source, symbol=self.fallback.symbol or self.name))
        return chain

    def move_limit(self) -> float:
        if self.max_daily_move is not None:
            return self.max_daily_move
        return DEFAULT_MOVE_LIMIT[self.units]


class SourceRef(Record):
    """source, symbol"""


class SeriesDef(SeriesMethods, Record):
    """name, title, frequency, units, source, symbol, fallback (a SourceRef or None), max_daily_move"""


class SourceSettings(Record):
    """base_url, timeout (None: the source's own default)"""


class Schedule(Record):
    """offset_minutes, poll_minutes, deadline (a time in ET), catch_up_sessions, standby_retry_seconds"""


class Notify(Record):
    """default, by_severity, admin, max_attempts, retry_base_seconds, charts, telegram_pace_seconds,
    quiet_hours, quiet_hours_mode, grouping, group_above"""


class Settings(Record):
    """sources (name -> SourceSettings), schedule, notify, timezone, digest"""
