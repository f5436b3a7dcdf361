"""Sound that matches the stakes: info silent, quiet hours silent or held, critical always rings.

The pure decisions (bot.notify.quiet) on wall-clock windows that cross
midnight and daylight-saving changes; then the Telegram request fields against
the Bot API stand-in, with the notifier's clock set inside and outside the window.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.clock import SimulatedClock
from bot.errors import ConfigError
from bot.notify import quiet
from bot.notify import telegram as telegram_notifier
from bot.notify.alert import Alert
from bot.settings.models import Settings

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def settings(window="22:00-07:00", mode="silent", tz="Europe/Berlin"):
    return Settings(timezone=tz, notify={"quiet_hours": window, "quiet_hours_mode": mode,
                                         "telegram_pace_seconds": 0})


def alert(severity="warning", rule="small-cap-trap"):
    return Alert(rule_id=rule, session=date(2024, 7, 11), severity=severity, title="Small caps rally", text="IWM +4%")


def at(tz, *fields):
    return datetime(*fields, tzinfo=tz).astimezone(timezone.utc)


@pytest.mark.parametrize("local,inside", [
    ((2024, 7, 11, 22, 30), True),   # 16:30 ET is 22:30 in Berlin: inside
    ((2024, 7, 12, 6, 59), True),    # after midnight, before the end
    ((2024, 7, 12, 7, 0), False),    # the end is outside
    ((2024, 7, 11, 21, 59), False),
    ((2024, 7, 11, 22, 0), True),    # the start is inside
])
def test_a_window_that_crosses_midnight_holds_from_its_start_to_its_end(local, inside):
    assert quiet.in_quiet_hours(at(BERLIN, *local), settings()) is inside


def test_a_window_within_one_day_holds_only_between_its_times():
    s = settings("12:00-14:00")
    assert quiet.in_quiet_hours(at(BERLIN, 2024, 7, 11, 13, 0), s)
    assert not quiet.in_quiet_hours(at(BERLIN, 2024, 7, 11, 23, 0), s)


def test_info_is_always_silent_and_critical_never_even_inside_quiet_hours():
    inside = at(BERLIN, 2024, 7, 11, 22, 30)
    outside = at(BERLIN, 2024, 7, 11, 12, 0)
    assert quiet.silent(alert("info"), outside, settings())
    assert not quiet.silent(alert("critical"), inside, settings())
    assert quiet.silent(alert("warning"), inside, settings())
    assert not quiet.silent(alert("warning"), outside, settings())
    assert not quiet.silent(alert("warning"), inside, Settings())  # no window: only info is silent


def test_hold_mode_holds_anything_but_critical_until_the_window_ends():
    s = settings(mode="hold")
    evening = at(BERLIN, 2024, 7, 11, 22, 30)
    assert quiet.hold_until(alert("warning"), evening, s) == at(BERLIN, 2024, 7, 12, 7, 0)
    assert quiet.hold_until(alert("info"), evening, s) == at(BERLIN, 2024, 7, 12, 7, 0)
    assert quiet.hold_until(alert("critical"), evening, s) is None
    assert quiet.hold_until(alert("warning"), at(BERLIN, 2024, 7, 12, 3, 0), s) == at(BERLIN, 2024, 7, 12, 7, 0)
    assert quiet.hold_until(alert("warning"), at(BERLIN, 2024, 7, 12, 9, 0), s) is None
    assert quiet.hold_until(alert("warning"), evening, settings(mode="silent")) is None


def test_only_channels_that_ring_a_phone_are_held():
    s = settings(mode="hold")
    evening = at(BERLIN, 2024, 7, 11, 22, 30)
    assert quiet.hold_until(alert(), evening, s, channel="telegram:1001") == at(BERLIN, 2024, 7, 12, 7, 0)
    assert quiet.hold_until(alert(), evening, s, channel="apprise:ab12cd34") is not None
    assert quiet.hold_until(alert(), evening, s, channel="console") is None
    assert quiet.hold_until(alert(), evening, s, channel="email") is None


def test_hold_ends_at_local_seven_across_the_spring_forward_night():
    # Europe/Berlin moves from +01:00 to +02:00 at 02:00 on 2024-03-31: 07:00 local is 05:00 UTC, not 06:00
    held = quiet.hold_until(alert(), at(BERLIN, 2024, 3, 30, 23, 0), settings(mode="hold"))
    assert held == datetime(2024, 3, 31, 5, 0, tzinfo=timezone.utc)


def test_hold_ends_at_local_seven_across_the_fall_back_night():
    held = quiet.hold_until(alert(), at(BERLIN, 2024, 10, 26, 23, 0), settings(mode="hold"))
    assert held == datetime(2024, 10, 27, 6, 0, tzinfo=timezone.utc)


def test_a_window_end_inside_the_spring_forward_gap_resolves_to_the_first_instant_after_it():
    s = settings("22:00-02:30", mode="hold", tz="America/New_York")
    held = quiet.hold_until(alert(), at(NEW_YORK, 2024, 3, 9, 23, 0), s)
    assert held == datetime(2024, 3, 10, 7, 0, tzinfo=timezone.utc)  # 03:00 EDT, the wall clock after the jump


@pytest.mark.parametrize("body,message", [
    ({"timezone": "Europe/Berlinn"}, "unknown time zone 'Europe/Berlinn'"),
    ({"notify": {"quiet_hours": "22-7"}}, "write it in quotes as \"HH:MM-HH:MM\""),
    ({"notify": {"quiet_hours": "25:00-07:00"}}, "is not a window"),
    ({"notify": {"quiet_hours": "07:00-7:00"}}, "starts and ends at the same time"),
    ({"notify": {"quiet_hours_mode": "mute"}}, "'silent' or 'hold'"),
])
def test_bad_quiet_hours_settings_are_refused_with_what_to_write(body, message):
    with pytest.raises(ValueError, match=None) as caught:
        Settings(**body)
    assert message in str(caught.value)


def test_quiet_hours_in_settings_yaml_are_checked_at_file_line_col(tmp_path):
    from bot.settings.load import load_settings
    path = tmp_path / "settings.yaml"
    path.write_text("timezone: Europe/Berlin\nnotify:\n  quiet_hours: \"22:00-07\"\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"{path}:3:16:" in str(caught.value) and "22:00-07:00" in str(caught.value)


# -- against the Bot API stand-in -----------------------------------------------------------

def send(notifier, alerts):
    results = {}
    notifier.send("1001", alerts, {}, lambda i, d: results.__setitem__(i, d))
    return [results[i] for i in range(len(alerts))]


def test_an_info_alert_goes_silently(telegram):
    clock = SimulatedClock(at(BERLIN, 2024, 7, 11, 12, 0))
    [result] = send(telegram_notifier.Notifier(settings(), clock=clock), [alert("info")])
    assert result.ok
    [call] = telegram.sent("sendMessage")
    assert call.fields["disable_notification"] == "true"


def test_a_warning_rings_outside_quiet_hours_and_is_silent_inside(telegram):
    clock = SimulatedClock(at(BERLIN, 2024, 7, 11, 12, 0))
    notifier = telegram_notifier.Notifier(settings(), clock=clock)
    send(notifier, [alert("warning")])
    clock.set(at(BERLIN, 2024, 7, 11, 22, 30))
    send(notifier, [alert("warning")])
    loud, quiet_one = telegram.sent("sendMessage")
    assert loud.fields["disable_notification"] == "false"
    assert quiet_one.fields["disable_notification"] == "true"


def test_a_critical_alert_rings_inside_quiet_hours(telegram):
    clock = SimulatedClock(at(BERLIN, 2024, 7, 11, 22, 30))
    send(telegram_notifier.Notifier(settings(), clock=clock), [alert("critical")])
    [call] = telegram.sent("sendMessage")
    assert call.fields["disable_notification"] == "false"


def test_a_silent_chart_goes_silently_as_a_photo_too(telegram):
    clock = SimulatedClock(at(BERLIN, 2024, 7, 11, 22, 30))
    notifier = telegram_notifier.Notifier(settings(), clock=clock)
    notifier.send("1001", [alert("warning")], {0: b"\x89PNG\r\n\x1a\nchart"}, lambda i, d: None)
    [call] = telegram.sent("sendPhoto")
    assert call.fields["disable_notification"] == "true"


def test_in_hold_mode_the_outbox_delivers_a_warning_when_the_window_ends_and_a_critical_at_once(telegram, store):
    """The whole path: enqueue at 22:30 Berlin, deliver (held), deliver again at 07:00 (sent, ringing)."""
    from bot.notify.delivery import deliver, enqueue
    s = settings(mode="hold")
    clock = SimulatedClock(at(BERLIN, 2024, 7, 11, 22, 30))
    enqueue(store, [(alert("warning"), ["telegram"]), (alert("critical", rule="soft-cpi-rotation"), ["telegram"])],
            s, now=clock.now())
    first = deliver(store, s, clock=clock, hold_until=quiet.hold_until)
    assert (first.sent, first.held) == (2, 2)  # the critical to both chats; the warning held for both
    assert all("soft-cpi-rotation" in c.fields["text"] for c in telegram.sent("sendMessage"))
    clock.set(at(BERLIN, 2024, 7, 12, 6, 59))
    assert deliver(store, s, clock=clock, hold_until=quiet.hold_until).sent == 0  # not yet
    clock.set(at(BERLIN, 2024, 7, 12, 7, 0))
    assert deliver(store, s, clock=clock, hold_until=quiet.hold_until).sent == 2
    morning = [c for c in telegram.sent("sendMessage") if "small-cap-trap" in c.fields["text"]]
    assert len(morning) == 2 and all(c.fields["disable_notification"] == "false" for c in morning)
