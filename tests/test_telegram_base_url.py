"""Where the bot talks to Telegram: TELEGRAM_BASE_URL in either spelling, and an error that names the address.

`notify-test` with Telegram unreachable says which URL it tried (the token
shown as <token>, never itself) instead of a bare `httpx.ConnectError`.
"""

from __future__ import annotations

import pytest

from bot.cli import main
from tests.conftest import free_port

SPELLINGS = [  # TELEGRAM_BASE_URL as written (the stand-in's address + this): each reaches the same server
    "",
    "/",
    "/bot",
    "/bot/",
]


@pytest.mark.parametrize("suffix", SPELLINGS, ids=[s or "bare" for s in SPELLINGS])
def test_the_base_url_works_with_or_without_bot_at_its_end(telegram, monkeypatch, suffix):
    monkeypatch.setenv("TELEGRAM_BASE_URL", telegram.url + suffix)
    assert main(["notify-test", "--channel", "telegram"]) == 0
    assert {c.fields["chat_id"] for c in telegram.sent("sendPhoto")} == {"1001", "1002"}


def test_notify_test_with_telegram_down_names_the_url_never_the_token(monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-token")
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001")
    monkeypatch.setenv("TELEGRAM_BASE_URL", f"http://127.0.0.1:{port}/bot")
    assert main(["notify-test", "--channel", "telegram"]) == 5
    out = capsys.readouterr()
    [line] = [line for line in out.err.splitlines() if "FAILED" in line]
    assert line.startswith(f"telegram:1001: FAILED: network error: cannot reach http://127.0.0.1:{port}/bot<token>/ (")
    assert "SECRET" not in out.err + out.out and "httpx.ConnectError" not in line
