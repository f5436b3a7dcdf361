"""Mute and Why buttons on Telegram alerts, and their callback data (bot.notify.button_codec): it fits
Telegram's 64 bytes, parses back, and a forged or stale one parses to nothing."""

from __future__ import annotations

from datetime import date

import pytest

from bot.notify import telegram as telegram_notifier
from bot.notify.alert import Alert
from tests.notifying import PNG, SETTINGS, alert, keyboard_of, send


def test_every_telegram_alert_carries_mute_and_why_buttons_that_parse_back(telegram):
    from bot.notify.button_codec import parse_callback
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert result.ok
    [row] = keyboard_of(telegram.sent("sendMessage")[0])
    assert [b["text"] for b in row] == ["🔕 Mute 1 day", "🔕 Mute 1 week", "❓ Why?"]
    actions = [parse_callback(b["callback_data"], ["small-cap-trap", "other"]) for b in row]
    assert [(a.kind, a.rule_id, a.session, a.duration and a.duration.days) for a in actions] == [
        ("mute", "small-cap-trap", date(2024, 7, 11), 1), ("mute", "small-cap-trap", date(2024, 7, 11), 7),
        ("why", "small-cap-trap", date(2024, 7, 11), None)]


def test_the_buttons_go_on_the_message_that_carries_the_text(telegram):
    long = alert(text="word " * 400)
    send(telegram_notifier.Notifier(SETTINGS), "1001", [long], {0: PNG})
    photo, message = telegram.messages()
    assert "reply_markup" not in photo.fields and len(keyboard_of(message)[0]) == 3


def test_a_notice_gets_no_buttons(telegram):
    notice = Alert(rule_id="notice:late-data", session=date(2024, 7, 11), severity="warning",
                   title="Closebell notice", text="DGS10 is late", kind="notice")
    send(telegram_notifier.Notifier(SETTINGS), "1001", [notice])
    assert "reply_markup" not in telegram.sent("sendMessage")[0].fields


def test_callback_data_fits_telegrams_64_bytes_even_for_a_64_character_rule_id():
    from bot.notify.button_codec import callback_data, parse_callback
    long_id = "a-very-long-rule-id-" + "x" * 40 + "-end"
    twin = long_id[:-4] + "-two"  # same first 60 characters
    assert len(long_id) == 64
    data = callback_data("m1w", long_id, date(2024, 7, 11), secret="tok")
    assert len(data.encode()) <= 64
    action = parse_callback(data, [twin, long_id], secret="tok")
    assert action.rule_id == long_id and action.duration.days == 7


@pytest.mark.parametrize("tamper", [
    lambda d: d.replace("small-cap-trap", "soft-cpi-rotation"),  # another rule, same signature
    lambda d: d.replace("m1d", "m1w"),  # a longer mute than the button offered
    lambda d: d.replace("20240711", "20240712"),
    lambda d: d.replace("v1|", "v9|"),  # an unknown version
    lambda d: d + "x" * 64,  # longer than Telegram allows
    lambda d: "mute small-cap-trap",
])
def test_a_forged_callback_parses_to_nothing(tamper):
    from bot.notify.button_codec import callback_data, parse_callback
    data = callback_data("m1d", "small-cap-trap", date(2024, 7, 11), secret="tok")
    assert parse_callback(data, ["small-cap-trap", "soft-cpi-rotation"], secret="tok") is not None
    assert parse_callback(tamper(data), ["small-cap-trap", "soft-cpi-rotation"], secret="tok") is None


def test_a_stale_callback_parses_to_nothing():
    from bot.notify.button_codec import callback_data, parse_callback
    data = callback_data("why", "small-cap-trap", date(2024, 7, 11), secret="tok")
    assert parse_callback(data, ["soft-cpi-rotation"], secret="tok") is None  # the rule is gone
    assert parse_callback(data, ["small-cap-trap"], secret="new-token") is None  # made under another token
