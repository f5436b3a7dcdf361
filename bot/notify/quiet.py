"""Sound that matches the stakes: which alerts ring, which arrive silently, which wait for the morning.

The job runs at 16:30 ET, which is 22:30 in Europe and 05:30 in Tokyo, so:

- `info` alerts always arrive silently (Telegram `disable_notification`);
- inside `notify.quiet_hours` (a daily window read in the user's `timezone`,
  e.g. "22:00-07:00", which may cross midnight) anything but `critical` is
  silent (`quiet_hours_mode: silent`) or held until the window ends
  (`quiet_hours_mode: hold`);
- `critical` always rings.

Everything here is pure: the time comes in as `now_utc`, so replay and tests
decide the same way as the live bot. Windows are compared on local wall-clock
time, so they keep their meaning across daylight-saving changes; a window end
that falls into a spring-forward gap resolves to the first instant after it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.clock import ET

RINGING_CHANNELS = ("telegram", "apprise")  # the channels that make a phone ring; only they are held


def window(settings) -> tuple[time, time] | None:
    """(start, end) of the quiet-hours window, or None when no window is set."""
    text = settings.notify.quiet_hours if settings is not None else None
    if not text:
        return None
    start, end = text.split("-")
    return _time(start), _time(end)


def _time(hhmm: str) -> time:
    hours, minutes = hhmm.strip().split(":")
    return time(int(hours), int(minutes))


def zone(settings) -> ZoneInfo:
    return ZoneInfo(settings.timezone) if settings is not None else ET


def in_quiet_hours(now_utc: datetime, settings) -> bool:
    """True when `now_utc`, read in the user's time zone, is inside the quiet-hours window."""
    span = window(settings)
    if span is None:
        return False
    start, end = span
    local = _aware(now_utc).astimezone(zone(settings)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window crosses midnight


def silent(alert, now_utc: datetime, settings) -> bool:
    """Send without sound? `info` always; anything but `critical` inside quiet hours.

    In hold mode the outbox holds such alerts until the window ends (see
    `hold_until`); should one still be sent inside the window (a manual
    retry), it goes silently rather than ringing.
    """
    if alert.severity == "critical":
        return False
    if alert.severity == "info":
        return True
    return in_quiet_hours(now_utc, settings)


def hold_until(alert, now_utc: datetime, settings, channel: str | None = None) -> datetime | None:
    """When a held alert may go (aware UTC: the end of the current window), or None to send now.

    Only in `quiet_hours_mode: hold`, only inside the window, never for `critical`;
    given a `channel` (an outbox key such as "telegram:1001" or "email"), only
    for the channels that ring a phone (RINGING_CHANNELS): the console and
    email are never held.
    """
    if settings is None or settings.notify.quiet_hours_mode != "hold" or alert.severity == "critical":
        return None
    if channel is not None and channel.partition(":")[0] not in RINGING_CHANNELS:
        return None
    if not in_quiet_hours(now_utc, settings):
        return None
    _start, end = window(settings)
    tz = zone(settings)
    local = _aware(now_utc).astimezone(tz)
    day = local.date()
    if local.time().replace(tzinfo=None) >= end:  # before midnight in a window that crosses it
        day += timedelta(days=1)
    return _wall_clock(day, end, tz)


def _wall_clock(day, at: time, tz: ZoneInfo) -> datetime:
    """`day` `at` local time as aware UTC; a time skipped by a DST change becomes the first instant after the gap."""
    naive = datetime.combine(day, at)
    utc = naive.replace(tzinfo=tz).astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    # inside a spring-forward gap: walk from the earlier reading to the first minute at or after `naive`
    moment = min(utc, naive.replace(tzinfo=tz, fold=1).astimezone(timezone.utc))
    while moment.astimezone(tz).replace(tzinfo=None) < naive:
        moment += timedelta(minutes=1)
    return moment


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("quiet hours need an aware datetime (UTC)")
    return when
