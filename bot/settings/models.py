"""Typed settings: the series the bot knows and how the bot runs.

Series are declared once, by name, in `config/series.yaml`; the name is how
rules refer to them. How the bot runs (source URLs, schedule, notification
routing) lives in `config/settings.yaml`. Secrets never live in either: they
come from the environment (see `bot.settings.env`).
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.engine.severity import SEVERITIES
from bot.settings import values
from bot.settings.values import SeriesMethods

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# The channel names, defined once: routing in settings.yaml and a rule's `notify:` both use this type, and
# the notifier registry (bot.notify.registry.NOTIFIERS) has one module per name, in this order (a test checks).
Channel = Literal["console", "telegram", "email", "apprise"]
CHANNELS = get_args(Channel)
# The severity names are the engine's (bot.engine.severity), lowest first.
Severity = Literal[SEVERITIES]
QUIET_HOURS_RE = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


class Strict(BaseModel):
    # defer_build: a model's validator is built on its first validation, not at import, so a configuration
    # read back from the cache (bot.settings.cache, unpickled without validating) never pays for building it
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SourceRef(Strict):
    source: str = Field(description="Source name: treasury, fred, yahoo, nasdaq, bls or csv")
    symbol: str | None = Field(None, description="Symbol at that source (default: the series name)")


class SeriesDef(SeriesMethods, Strict):
    """One series. `name` comes from its key in the file."""

    name: str = ""
    title: str = ""
    frequency: Literal["daily", "monthly"] = "daily"
    units: Literal["price", "percent", "index"] = Field(
        "price", description="price: must be > 0; percent: yields and rates; index: CPI and such")
    source: str
    symbol: str | None = None
    fallback: SourceRef | None = None
    max_daily_move: float | None = Field(
        None, description="Reject a value that moves more than this from the previous one "
                          "(percent for prices, points for yields). Default: 25% for prices, 1.0 for yields")


class SeriesFile(Strict):
    series: dict[str, SeriesDef]

    @field_validator("series", mode="before")
    @classmethod
    def _names(cls, value):
        if isinstance(value, dict):
            out = {}
            for key, body in value.items():
                if not isinstance(key, str) or not NAME_RE.match(key):
                    raise ValueError(f"series name {key!r} must start with a letter and use only letters, "
                                     "digits and _ (e.g. IWM, DGS10)")
                out[key] = dict(body, name=key) if isinstance(body, dict) else body
            return out
        return value


class SourceSettings(Strict):
    base_url: str | None = Field(None, description="Override the source's URL (tests point it at 127.0.0.1)")
    timeout: float | None = Field(None, gt=0, description="Seconds to wait for an answer (default: the "
                                                          "source's own, 30; 10 for nasdaq, which stalls)")


class Schedule(Strict):
    offset_minutes: int = Field(30, ge=0, le=360, description="Run this long after each session's close")
    poll_minutes: int = Field(10, ge=1, le=120, description="While today's data is missing, fetch again this often")
    deadline: time = Field(time(20, 0), description="Give up waiting for data at this ET time (HH:MM)")
    catch_up_sessions: int = Field(5, ge=0, le=60, description="On start, evaluate at most this many missed sessions")

    @field_validator("deadline", mode="before")
    @classmethod
    def _sexagesimal(cls, value):
        """YAML 1.1 reads an unquoted 20:00 as the number 1200 (20 x 60 + 0): take it as the time meant."""
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 24 * 60:
                raise ValueError("not a time of day; write it in quotes as HH:MM, e.g. deadline: \"20:00\"")
            return time(value // 60, value % 60)
        return value
    standby_retry_seconds: int = Field(15, ge=1, le=60, description="PostgreSQL: how often a standby instance "
                                                                    "tries to take over")


class Notify(Strict):
    default: list[Channel] | None = Field(
        None, description="Channels for rules without `notify:` (default: every configured channel, "
                          "console always)")
    by_severity: dict[Severity, list[Channel]] = \
        Field(default_factory=dict, description="Channels per severity, for rules without `notify:`")
    admin: Channel | None = Field(
        None, description="Where the bot reports its own trouble (late or stale data, failed deliveries and "
                          "runs, bad rules); default: the first configured of telegram, apprise, email")
    max_attempts: int = Field(6, ge=1, le=50, description="Delivery attempts before an alert is marked failed")
    retry_base_seconds: float = Field(60.0, ge=0, description="Wait before the first retry; doubles each time")
    charts: bool = Field(True, description="Attach a chart to each alert")
    telegram_pace_seconds: float = Field(1.0, ge=0, description="Pause between messages to one chat")
    quiet_hours: str | None = Field(
        None, description="A daily window in `timezone`, \"HH:MM-HH:MM\" (may cross midnight, e.g. "
                          "\"22:00-07:00\"), inside which only critical alerts make a sound")
    quiet_hours_mode: Literal["silent", "hold"] = Field(
        "silent", description="Inside quiet hours: silent = deliver without sound; hold = deliver when the "
                              "window ends")
    grouping: bool = Field(True, description="Send one grouped message when many alerts reach one chat at once")
    group_above: int = Field(3, ge=1, le=50, description="Group when more than this many alerts go to one chat "
                                                         "in one delivery")

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _window(cls, value):
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not QUIET_HOURS_RE.match(value):
            raise ValueError(f"quiet_hours {value!r} is not a window; write it in quotes as \"HH:MM-HH:MM\", "
                             "e.g. quiet_hours: \"22:00-07:00\"")
        start, end = (part.strip() for part in value.split("-"))
        if _minutes(start) == _minutes(end):
            raise ValueError(f"quiet_hours {value!r} starts and ends at the same time; write e.g. \"22:00-07:00\"")
        return f"{_minutes(start) // 60:02d}:{_minutes(start) % 60:02d}-{_minutes(end) // 60:02d}:{_minutes(end) % 60:02d}"


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class Settings(Strict):
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    schedule: Schedule = Field(default_factory=Schedule)
    notify: Notify = Field(default_factory=Notify)
    timezone: str = Field("America/New_York", description="Your time zone (IANA name, e.g. Europe/Berlin): "
                                                           "quiet hours are read in it")
    digest: Literal["off", "daily", "weekly"] = Field(
        "off", description="After the run, one short message: what fired, or the rules nearest to firing "
                           "(weekly: on the week's last session)")

    @field_validator("digest", mode="before")
    @classmethod
    def _digest_off(cls, value):
        """YAML 1.1 reads a bare `off` as false: take it as the word the user wrote."""
        return "off" if value is False else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as America/New_York, "
                             "Europe/Berlin or Asia/Tokyo") from None
        return value


def freeze(value):
    """A validated model as the plain records the bot runs on (bot.settings.values), recursively."""
    if isinstance(value, BaseModel):
        record = getattr(values, type(value).__name__)
        return record(**{name: freeze(getattr(value, name)) for name in type(value).model_fields})
    if isinstance(value, dict):
        return {key: freeze(item) for key, item in value.items()}
    if isinstance(value, list):
        return [freeze(item) for item in value]
    return value
