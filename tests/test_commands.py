"""Telegram commands through the Bot API stand-in: answered in allowed chats only."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from bot.daemon.commands import CommandPoller, respond
from bot.daemon.live_rules import Loaded
from bot.data.calendar import ET
from bot.data.fetch import update
from bot.engine.rules import load_rules
from bot.pipeline import Runtime
from bot.settings.load import load_series
from bot.settings.models import Settings
from tests.conftest import ROOT

NOW = datetime(2024, 7, 12, 9, 0, tzinfo=ET)


@pytest.fixture(scope="module")
def loaded_store(tmp_path_factory, data_dir):
    from bot.store import Store
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('commands') / 'c.db'}")
    series = load_series(ROOT / "config" / "series.yaml")
    update(store, series, data_dir=str(data_dir))
    rules = load_rules(ROOT / "config" / "rules.yaml", series)
    return store, Loaded(series, Settings(), rules)


def test_help_lists_every_command(loaded_store):
    text = respond("/help", *loaded_store, NOW).text
    for command in ("/status", "/rules", "/check", "/last", "/chart", "/mute", "/unmute"):
        assert command in text


def test_status_reports_freshness_per_series(loaded_store):
    text = respond("/status", *loaded_store, NOW).text
    assert "IWM        latest 2026-06-12" in text and "outbox: 0 pending" in text


def test_rules_lists_ids_titles_and_last_firing(loaded_store):
    text = respond("/rules", *loaded_store, NOW).text
    assert "soft-cpi-rotation [critical]" in text and "last fired 2024-07-11" in text


def test_check_evaluates_the_latest_session(loaded_store):
    assert respond("/check", *loaded_store, NOW).text.startswith("Session Fri 2026-06-12")


def test_chart_answers_with_a_png(loaded_store):
    reply = respond("/chart IWM dgs10 3", *loaded_store, NOW)
    assert reply.photo[:4] == b"\x89PNG" and len(reply.photo) < 200_000
    assert "IWM vs DGS10" in reply.text


def test_chart_of_an_unknown_series_suggests_one(loaded_store):
    assert "Unknown series IWN; did you mean 'IWM'?" in respond("/chart IWN", *loaded_store, NOW).text


def test_mute_is_stored_and_unmute_removes_it(loaded_store):
    store, loaded = loaded_store
    assert "Muted small-cap-trap until Mon 2024-07-15" in respond("/mute small-cap-trap 3d", store, loaded, NOW).text
    assert "small-cap-trap" in store.mutes(NOW)
    assert "(muted until" in respond("/rules", store, loaded, NOW).text
    assert respond("/unmute small-cap-trap", store, loaded, NOW).text == "Unmuted small-cap-trap."
    assert store.mutes(NOW) == {}


def test_mute_survives_a_restart(loaded_store, tmp_path):
    from bot.store import Store
    store, loaded = loaded_store
    respond("/mute risk-off-pivot 2w", store, loaded, NOW)
    assert "risk-off-pivot" in Store(store.url).mutes(NOW)
    respond("/unmute risk-off-pivot", store, loaded, NOW)


def test_mute_refuses_an_unknown_rule_or_duration(loaded_store):
    assert "did you mean 'small-cap-trap'" in respond("/mute small-cap-trp 3d", *loaded_store, NOW).text
    assert "not a duration" in respond("/mute small-cap-trap soon", *loaded_store, NOW).text


def test_last_lists_recent_alerts(loaded_store):
    from bot.notify.alert import Alert
    from bot.notify.outbox import deliver, enqueue
    store, loaded = loaded_store
    alert = Alert("soft-cpi-rotation", datetime(2024, 7, 11).date(), "critical", "t", "CPI -0.04% m/m")
    enqueue(store, [(alert, ["console"])], loaded.settings)
    deliver(store, loaded.settings)
    assert respond("/last", store, loaded, NOW).text == "2024-07-11 soft-cpi-rotation: CPI -0.04% m/m"


def test_unknown_command_suggests_one(loaded_store):
    assert "did you mean 'status'" in respond("/stauts", *loaded_store, NOW).text


class FixedConfig:
    def __init__(self, loaded):
        self.loaded = loaded

    def get(self):
        return self.loaded


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_the_poller_answers_an_allowed_chat_and_ignores_others(loaded_store, telegram, caplog):
    store, loaded = loaded_store
    poller = CommandPoller(Runtime(store, FixedConfig(loaded), fetch=None), poll_timeout=0, idle_sleep=0.05)
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


def test_the_poller_sends_charts_as_photos(loaded_store, telegram):
    store, loaded = loaded_store
    poller = CommandPoller(Runtime(store, FixedConfig(loaded), fetch=None), poll_timeout=0, idle_sleep=0.05)
    telegram.push_command(1002, "/chart SPY 2")
    poller.start()
    try:
        assert wait_for(lambda: telegram.sent("sendPhoto"))
    finally:
        poller.stop()
    [photo] = telegram.sent("sendPhoto")
    assert photo.files["photo"][:4] == b"\x89PNG" and photo.fields["chat_id"] == "1002"
