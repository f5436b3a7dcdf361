"""Telegram commands through the Bot API stand-in: answered in allowed chats only."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from bot.app import App
from bot.clock import ET, SYSTEM, SimulatedClock
from bot.data.fetch import update
from bot.settings.live import LiveConfig
from bot.settings.load import load_series
from bot.telegram.handlers import respond
from bot.telegram.poller import CommandPoller
from tests.conftest import ROOT

NOW = datetime(2024, 7, 12, 9, 0, tzinfo=ET)


@pytest.fixture(scope="module")
def app(tmp_path_factory, data_dir):
    """The app the Telegram adapter talks to: the shipped rules, a store holding the shipped history,
    a clock stopped at NOW."""
    from bot.store import Store
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('commands') / 'c.db'}")
    update(store, load_series(ROOT / "config" / "series.yaml"), data_dir=str(data_dir), today=SYSTEM.today_et())
    config = LiveConfig(ROOT / "config" / "rules.yaml", ROOT / "config")
    return App(config, clock=SimulatedClock(NOW), store=store)


def test_help_lists_every_command(app):
    text = respond("/help", app).text
    for command in ("/status", "/rules", "/check", "/last", "/chart", "/mute", "/unmute"):
        assert command in text


def test_status_reports_freshness_per_series(app):
    text = respond("/status", app).text
    assert "IWM        latest 2026-06-12" in text and "outbox: 0 pending" in text


def test_rules_lists_ids_titles_and_last_firing(app):
    text = respond("/rules", app).text
    assert "soft-cpi-rotation [critical]" in text and "last fired 2024-07-11" in text


def test_check_evaluates_the_latest_session(app):
    assert respond("/check", app).text.startswith("Session Fri 2026-06-12")


def test_chart_answers_with_a_png(app):
    reply = respond("/chart IWM dgs10 3", app)
    assert reply.photo[:4] == b"\x89PNG" and len(reply.photo) < 200_000
    assert "IWM vs DGS10" in reply.text


def test_chart_of_an_unknown_series_suggests_one(app):
    assert "unknown series 'IWN'; did you mean 'IWM'?" in respond("/chart IWN", app).text


def test_mute_is_stored_and_unmute_removes_it(app):
    store = app.store
    assert "Muted small-cap-trap until Mon 2024-07-15" in respond("/mute small-cap-trap 3d", app).text
    assert "small-cap-trap" in store.mutes(NOW)
    assert "(muted until" in respond("/rules", app).text
    assert respond("/unmute small-cap-trap", app).text == "Unmuted small-cap-trap."
    assert store.mutes(NOW) == {}


def test_mute_survives_a_restart(app, tmp_path):
    from bot.store import Store
    store = app.store
    respond("/mute risk-off-pivot 2w", app)
    assert "risk-off-pivot" in Store(store.url).mutes(NOW)
    respond("/unmute risk-off-pivot", app)


def test_mute_refuses_an_unknown_rule_or_duration(app):
    assert "did you mean 'small-cap-trap'" in respond("/mute small-cap-trp 3d", app).text
    assert "not a duration" in respond("/mute small-cap-trap soon", app).text


def test_last_lists_recent_alerts(app):
    from bot.notify.alert import Alert
    from bot.notify.outbox import deliver, enqueue
    store, settings = app.store, app.loaded.settings
    alert = Alert("soft-cpi-rotation", datetime(2024, 7, 11).date(), "critical", "t", "CPI -0.04% m/m")
    enqueue(store, [(alert, ["console"])], settings, now=SYSTEM.now())
    deliver(store, settings)
    assert respond("/last", app).text == "2024-07-11 soft-cpi-rotation: CPI -0.04% m/m"


def test_unknown_command_suggests_one(app):
    assert "did you mean 'status'" in respond("/stauts", app).text


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_the_poller_answers_an_allowed_chat_and_ignores_others(app, telegram, caplog):
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05)
    telegram.push_command(555, "/status")  # not on the allow-list
    telegram.push_command(1001, "/help")
    poller.start()
    try:
        assert wait_for(lambda: telegram.sent("sendMessage"))
        time.sleep(0.3)
    finally:
        poller.stop()
    replies = telegram.sent("sendMessage")
    assert [r.fields["chat_id"] for r in replies] == ["1001"]
    assert "/mute RULE DURATION" in replies[0].fields["text"]
    assert "ignored '/status' from chat 555: not in TELEGRAM_CHAT_IDS" in caplog.text


def test_the_poller_sends_charts_as_photos(app, telegram):
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05)
    telegram.push_command(1002, "/chart SPY 2")
    poller.start()
    try:
        assert wait_for(lambda: telegram.sent("sendPhoto"))
    finally:
        poller.stop()
    [photo] = telegram.sent("sendPhoto")
    assert photo.files["photo"][:4] == b"\x89PNG" and photo.fields["chat_id"] == "1002"


ERRORS = [  # what python-telegram-bot raises for each answer of the Bot API
    ("NetworkError", lambda t: t.fail("sendMessage", 500, "Internal Server Error")),
    ("RetryAfter", lambda t: t.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)),
    ("Forbidden", lambda t: t.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")),
    ("BadRequest", lambda t: t.fail("sendMessage", 400, "Bad Request: message is too long")),
    ("TimedOut", lambda t: t.delay("sendMessage", 3.0)),
    ("getUpdates NetworkError", lambda t: t.fail("getUpdates", 502, "Bad Gateway")),
    ("getUpdates RetryAfter", lambda t: t.fail("getUpdates", 429, "Too Many Requests: retry after 1",
                                               retry_after=1)),
]


@pytest.mark.parametrize("inject", [e[1] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_the_command_loop_survives_every_telegram_error_and_keeps_answering(app, telegram, inject, caplog):
    """One failed reply (or poll) loses that reply only: the loop backs off and answers the next command."""
    inject(telegram)
    telegram.push_command(1001, "/help")
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05, backoff=0.05, request_timeout=1.0)
    poller.start()
    try:
        assert wait_for(lambda: len(telegram.sent("sendMessage")) >= 1)  # the first reply (failing, or failed poll)
        polls = poller.polls
        telegram.push_command(1001, "/help")  # after the failure: still answered
        assert wait_for(lambda: len(telegram.sent("sendMessage")) >= 2, seconds=20)
        assert poller.polls > polls
    finally:
        telegram.release()
        poller.stop()
    assert poller.thread.is_alive() is False
    assert "command loop failed" not in caplog.text


def test_why_answers_with_the_explanation_of_the_rule_on_that_day(app):
    text = respond("/why small-cap-trap 2024-07-16", app).text
    assert text.startswith("small-cap-trap did not hold on 2024-07-16")
    assert "change(DGS10, 5)" in text and "-0.13" in text
    assert "no rule 'small-cap-tarp'" in respond("/why small-cap-tarp", app).text
    assert "not a date" in respond("/why small-cap-trap yesterday", app).text


def test_mute_with_an_absurd_duration_answers_with_the_usage_line(app):
    for duration in ("99999999999w", "400d", "0d"):
        text = respond(f"/mute small-cap-trap {duration}", app).text
        assert "Usage: /mute RULE DURATION" in text, duration
    assert app.store.mutes(app.clock.now()) == {}


def alert_buttons(rule="soft-cpi-rotation"):
    from datetime import date
    from bot.notify.alert import Alert
    from bot.notify.buttons import keyboard
    markup = keyboard(Alert(rule, date(2024, 7, 11), "critical", "t", "x"))
    return {b.text: b.callback_data for row in markup.inline_keyboard for b in row}


def run_poller_until(app, telegram, predicate):
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05, backoff=0.05)
    poller.start()
    try:
        return wait_for(predicate)
    finally:
        poller.stop()


def test_a_mute_button_persists_the_mute_and_edits_the_message(app, telegram):
    data = next(v for k, v in alert_buttons().items() if "1 day" in k)
    telegram.push_callback(1001, data, message_id=7)
    assert run_poller_until(app, telegram, lambda: telegram.sent("editMessageReplyMarkup"))
    from datetime import date
    try:
        assert "soft-cpi-rotation" in app.store.mutes(app.clock.now())
        [answer] = telegram.sent("answerCallbackQuery")
        assert "muted until" in answer.fields["text"]
        before = len(app.store.outbox_rows(None))
        result = app.check(date(2024, 7, 11), send=True)  # the rule fires that day: the mute suppresses the alert
        assert [s.id for s in result.fired] == ["soft-cpi-rotation"]
        assert len(app.store.outbox_rows(None)) == before  # nothing queued for any channel
    finally:
        app.unmute("soft-cpi-rotation")


def test_a_why_button_answers_with_the_explanation(app, telegram):
    data = next(v for k, v in alert_buttons().items() if "Why" in k)
    telegram.push_callback(1002, data)
    assert run_poller_until(app, telegram, lambda: telegram.sent("sendMessage"))
    [reply] = telegram.sent("sendMessage")
    assert reply.fields["text"].startswith("soft-cpi-rotation fired on 2024-07-11")


def test_a_forged_button_is_refused_politely_and_changes_nothing(app, telegram):
    data = next(v for k, v in alert_buttons().items() if "1 week" in k)
    forged = data[:-1] + ("x" if data[-1] != "x" else "y")
    telegram.push_callback(1001, forged)
    telegram.push_callback(1001, "v1|m1w|20240711|deadbeef|soft-cpi-rotation")
    assert run_poller_until(app, telegram, lambda: len(telegram.sent("answerCallbackQuery")) >= 2)
    assert all("no longer valid" in a.fields["text"] for a in telegram.sent("answerCallbackQuery"))
    assert app.store.mutes(app.clock.now()) == {} and not telegram.sent("sendMessage")


def test_a_button_from_a_chat_not_on_the_allow_list_is_ignored(app, telegram, caplog):
    data = next(v for k, v in alert_buttons().items() if "1 day" in k)
    telegram.push_callback(555, data)
    telegram.push_command(1001, "/help")  # a marker: once answered, the button was seen too
    assert run_poller_until(app, telegram, lambda: telegram.sent("sendMessage"))
    assert not telegram.sent("answerCallbackQuery") and app.store.mutes(app.clock.now()) == {}
    assert "not in TELEGRAM_CHAT_IDS" in caplog.text
