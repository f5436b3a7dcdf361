"""The button codec (bot/notify/button_codec.py) where `make mutate` found changes no other test noticed.

Each test here failed on a surviving mutant (README, "Tests"): the grouped keyboard's rows and labels, the
secret taken from TELEGRAM_BOT_TOKEN when none is given, and parse_callback's edges (a December session, a
payload that is not text, no list of current rules).
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.notify.alert import Alert
from bot.notify.button_codec import callback_data, group_keyboard, parse_callback

SESSION = date(2024, 7, 11)


def alert(rule: str, kind: str = "alert") -> Alert:
    return Alert(rule_id=rule, session=SESSION, severity="warning", title=rule, text="text", values={}, kind=kind)


def parsed(data: str, rule_ids, secret="tok"):
    """(kind, rule id, session, mute days, code) of a callback, or None."""
    action = parse_callback(data, rule_ids, secret=secret)
    if action is None:
        return None
    return action.kind, action.rule_id, action.session, action.duration and action.duration.days, action.code


def rows_of(markup) -> list[list[tuple[str, str]]]:
    return [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]


def test_a_grouped_keyboard_has_one_row_per_alert_whose_buttons_parse_back_to_that_rule():
    markup = group_keyboard([alert("small-cap-trap"), alert("soft-cpi-rotation")], secret="tok")
    rows = rows_of(markup)
    assert [[text for text, _data in row] for row in rows] == [
        ["🔕 small-cap-trap 1d", "1 week", "Why?"], ["🔕 soft-cpi-rotation 1d", "1 week", "Why?"]]
    rules = ["small-cap-trap", "soft-cpi-rotation"]
    assert [[parsed(data, rules) for _text, data in row] for row in rows] == [
        [("mute", rule, SESSION, 1, "m1d"), ("mute", rule, SESSION, 7, "m1w"), ("why", rule, SESSION, None, "why")]
        for rule in rules]


def test_a_grouped_keyboard_is_signed_with_the_secret_it_is_given():
    [row] = rows_of(group_keyboard([alert("small-cap-trap")], secret="tok"))
    assert [parsed(data, ["small-cap-trap"], secret="other-token") for _text, data in row] == [None, None, None]


@pytest.mark.parametrize("alerts, rows", [
    ([alert(f"rule-{k}") for k in range(12)], 10),  # at most `rows` rows (default 10)
    ([alert("notice:late-data", kind="notice"), alert("small-cap-trap")], 1),  # notices get no row
    ([alert("small-cap-trap", kind="resolved")], None),  # nothing to mute or explain: no keyboard at all
    ([alert("notice:late-data", kind="notice")], None),
    ([alert("digest", kind="digest")], None),
])
def test_a_grouped_keyboard_has_a_row_for_each_alert_up_to_the_limit(alerts, rows):
    markup = group_keyboard(alerts, secret="tok")
    assert (markup and len(markup.inline_keyboard)) == rows


def test_without_a_secret_the_signature_is_keyed_by_the_bot_token(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:bot-token")
    data = callback_data("m1d", "small-cap-trap", SESSION)
    assert parsed(data, ["small-cap-trap"], secret="123:bot-token") == ("mute", "small-cap-trap", SESSION, 1, "m1d")
    assert parse_callback(data, ["small-cap-trap"]) is not None  # the same token read again when parsing
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    assert parse_callback(data, ["small-cap-trap"]) is None  # another token (none): not one of our buttons
    unkeyed = callback_data("m1d", "small-cap-trap", SESSION)
    assert parsed(unkeyed, ["small-cap-trap"], secret="") == ("mute", "small-cap-trap", SESSION, 1, "m1d")


@pytest.mark.parametrize("session", [date(2024, 1, 2), date(2024, 7, 11), date(2024, 10, 31), date(2024, 12, 31)])
def test_every_month_parses_back_to_its_own_session(session):
    data = callback_data("why", "small-cap-trap", session, secret="tok")
    assert parsed(data, ["small-cap-trap"]) == ("why", "small-cap-trap", session, None, "why")


@pytest.mark.parametrize("data", [None, 42, b"v1|m1d|20240711|Xq3v9LbT|small-cap-trap", ["v1"]])
def test_a_payload_that_is_not_text_parses_to_nothing(data):
    assert parse_callback(data, ["small-cap-trap"], secret="tok") is None


def test_without_the_current_rules_an_uncut_id_still_parses():
    data = callback_data("m1w", "small-cap-trap", SESSION, secret="tok")
    assert parsed(data, None) == ("mute", "small-cap-trap", SESSION, 7, "m1w")


def test_a_button_made_by_an_earlier_release_still_parses():
    """The signature's recipe is a contract with every message already on a phone: a change to the key
    derivation or to the signed text would turn all their buttons stale, so the bytes are pinned here."""
    made = ["v1|m1d|20240711|-xYvge9v|small-cap-trap", "v1|m1w|20240711|0JyMK6sw|small-cap-trap",
            "v1|why|20240711|225Yj2wd|small-cap-trap"]
    assert [callback_data(code, "small-cap-trap", SESSION, "tok") for code in ("m1d", "m1w", "why")] == made
    assert [parsed(data, ["small-cap-trap"])[4] for data in made] == ["m1d", "m1w", "why"]


def test_an_alerts_keyboard_is_signed_with_the_secret_it_is_given(monkeypatch):
    from bot.notify.button_codec import keyboard
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "another-token")
    data = [b.callback_data for row in keyboard(alert("small-cap-trap"), secret="tok").inline_keyboard for b in row]
    assert [parsed(d, ["small-cap-trap"])[4] for d in data] == ["m1d", "m1w", "why"]
