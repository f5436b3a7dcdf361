"""Trouble is visible by default: the bot's own notices go to the first configured phone channel."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest

from bot.notify.delivery import admin_notice, deliver
from bot.notify.routing import admin_channel
from bot.settings.load import load_settings
from bot.store import Store
from tests.conftest import ROOT, subprocess_env

TELEGRAM = {"TELEGRAM_BOT_TOKEN": "123456:abcdef", "TELEGRAM_CHAT_IDS": "1001"}
EMAIL = {"SMTP_HOST": "127.0.0.1", "EMAIL_TO": "me@example.org"}
APPRISE = {"APPRISE_URLS": "json://127.0.0.1:9/hook"}

# (what the environment configures, notify.admin in settings.yaml) -> where trouble is reported
ADMIN = [
    ({}, None, None),  # nothing but the console: the log only, as before
    (TELEGRAM, None, "telegram"),
    (EMAIL, None, "email"),
    (APPRISE, None, "apprise"),
    ({**EMAIL, **APPRISE}, None, "apprise"),  # apprise before email
    ({**EMAIL, **APPRISE, **TELEGRAM}, None, "telegram"),  # Telegram first
    ({**EMAIL, **TELEGRAM}, "email", "email"),  # said explicitly: as said
    ({}, "console", "console"),
]


@pytest.mark.parametrize("environment, admin, expected", ADMIN)
def test_the_admin_channel_is_the_first_configured_phone_channel_unless_settings_name_one(
        tmp_path, monkeypatch, environment, admin, expected):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "settings.yaml"
    path.write_text(f"notify:\n  admin: {admin}\n" if admin else "timezone: America/New_York\n")
    assert admin_channel(load_settings(path)) == expected


def test_with_the_shipped_settings_and_telegram_configured_an_admin_notice_reaches_the_phone(tmp_path, telegram):
    settings = load_settings(ROOT / "config" / "settings.yaml")  # a fresh config: nothing about admin in it
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    now = datetime(2024, 7, 11, 21, 0, tzinfo=timezone.utc)
    assert admin_notice(store, settings, "late:2024-07-11", "Data late for 2024-07-11: DGS10", now=now) == 2
    report = deliver(store, settings, sleep=lambda _s: None)
    store.close()
    assert report.sent == 2
    texts = [call.fields["text"] for call in telegram.messages()]
    assert sorted(call.fields["chat_id"] for call in telegram.messages()) == ["1001", "1002"]
    assert all("Data late for 2024-07-11" in text for text in texts)


@pytest.mark.parametrize("command", [["status"], ["notify-test", "--channel", "console"]])
def test_status_and_notify_test_say_where_trouble_goes(tmp_path, command):
    for environment, said in [({}, "trouble (late or stale data, failed deliveries or runs): the log only"),
                              (TELEGRAM, "trouble (late or stale data, failed deliveries or runs): reported to "
                                         "telegram")]:
        proc = subprocess.run([sys.executable, "-m", "bot", *command], capture_output=True, text=True, cwd=ROOT,
                              env=subprocess_env(CLOSEBELL_HOME=tmp_path / "home", **environment), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert said in proc.stdout + proc.stderr
