"""`python -m bot telegram-setup` against the Bot API stand-in: the chat id found, written, and every failure.

Each failure exits 5 with what to do, and the token never appears in any output.
"""

from __future__ import annotations

import threading

import pytest

from bot.cli import main
from bot.notify.telegram_setup import write_chat_ids


@pytest.fixture
def stand_in(telegram, monkeypatch, tmp_path):
    """The stand-in long-polling like the real API; no chat ids configured yet; a fresh working directory."""
    telegram.long_poll = True
    monkeypatch.delenv("TELEGRAM_CHAT_IDS", raising=False)
    monkeypatch.chdir(tmp_path)
    return telegram


def run(capsys, *argv):
    code = main(["telegram-setup", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_it_names_the_bot_waits_for_a_message_and_prints_each_chat_that_wrote(stand_in, capsys):
    def say_hello_once_it_listens():
        while not stand_in.sent("getUpdates"):
            threading.Event().wait(0.05)
        stand_in.push_message(777001, "hi", username="ada")
        stand_in.push_message(-100123, "hello group", chat_type="supergroup", title="Market desk")

    helper = threading.Thread(target=say_hello_once_it_listens, daemon=True)
    helper.start()
    code, out, err = run(capsys, "--timeout", "30")
    helper.join()
    assert code == 0, err
    assert "Bot: @closebell_test_bot" in out and "send @closebell_test_bot any message" in out
    assert "777001  private  @ada" in out
    assert "TELEGRAM_CHAT_IDS=777001" in out
    assert stand_in.token not in out + err
    confirm = stand_in.sent("getUpdates")[-1]
    assert int(confirm.fields["offset"]) == len(stand_in.updates) + 1  # what was read is confirmed


def test_a_group_chat_is_shown_with_its_title(stand_in, capsys):
    stand_in.push_message(-100123, "hello group", chat_type="supergroup", title="Market desk")
    code, out, _err = run(capsys, "--timeout", "30")
    assert code == 0 and "-100123  supergroup  Market desk" in out


def test_write_creates_the_env_line(stand_in, capsys, tmp_path):
    stand_in.push_message(777001)
    code, out, _err = run(capsys, "--timeout", "30", "--write")
    assert code == 0
    assert (tmp_path / ".env").read_text() == "TELEGRAM_CHAT_IDS=777001\n"
    assert "Wrote TELEGRAM_CHAT_IDS=777001 to .env" in out


def test_write_updates_only_the_one_line_and_keeps_every_other_byte(stand_in, capsys, tmp_path):
    before = "# secrets\nTELEGRAM_BOT_TOKEN=abc\nTELEGRAM_CHAT_IDS=555\n\nSMTP_HOST=mail.example.com # mine\n"
    (tmp_path / ".env").write_text(before)
    stand_in.push_message(777001)
    assert run(capsys, "--timeout", "30", "--write")[0] == 0
    assert (tmp_path / ".env").read_text() == before.replace("TELEGRAM_CHAT_IDS=555", "TELEGRAM_CHAT_IDS=555,777001")


def test_write_chat_ids_appends_the_line_when_missing_and_keeps_a_file_without_final_newline(tmp_path):
    path = tmp_path / ".env"
    path.write_text("SMTP_HOST=x")
    assert write_chat_ids(path, [1, 2]) == "TELEGRAM_CHAT_IDS=1,2"
    assert path.read_text() == "SMTP_HOST=x\nTELEGRAM_CHAT_IDS=1,2\n"
    write_chat_ids(path, [2, 3])
    assert path.read_text() == "SMTP_HOST=x\nTELEGRAM_CHAT_IDS=1,2,3\n"


def test_an_invalid_token_exits_5_without_showing_it(stand_in, capsys, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "999999:WRONGWRONGWRONG")
    code, out, err = run(capsys, "--timeout", "5")
    assert code == 5
    assert "refused TELEGRAM_BOT_TOKEN (401 Unauthorized)" in err and "@BotFather" in err
    assert "WRONGWRONG" not in out + err


def test_a_webhook_on_the_bot_exits_5_and_says_how_to_remove_it(stand_in, capsys):
    stand_in.webhook = "https://example.com/hook"
    code, out, err = run(capsys, "--timeout", "5")
    assert code == 5
    assert "webhook is set" in err and "409 Conflict" in err and "--delete-webhook" in err and "deleteWebhook" in err
    assert stand_in.token not in out + err


def test_delete_webhook_removes_it_then_finds_the_chat(stand_in, capsys):
    stand_in.webhook = "https://example.com/hook"
    stand_in.push_message(777001)
    code, out, _err = run(capsys, "--timeout", "30", "--delete-webhook")
    assert code == 0 and "Webhook removed." in out and "777001" in out
    assert stand_in.sent("deleteWebhook")


def test_another_poller_exits_5_and_names_it(stand_in, capsys):
    stand_in.fail("getUpdates", 409, "Conflict: terminated by other getUpdates request; make sure that only one "
                                     "bot instance is running")
    code, _out, err = run(capsys, "--timeout", "5")
    assert code == 5 and "another program is reading this bot's messages" in err


def test_no_message_before_the_timeout_exits_5_with_what_to_do(stand_in, capsys):
    code, out, err = run(capsys, "--timeout", "1")
    assert code == 5
    assert "no message reached @closebell_test_bot within 1 s" in err and "--timeout" in err
    assert stand_in.token not in out + err


def test_no_network_exits_5_naming_where_it_tried(monkeypatch, capsys, tmp_path):
    from tests.conftest import free_port
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRETSECRET")
    monkeypatch.setenv("TELEGRAM_BASE_URL", f"http://127.0.0.1:{free_port()}")
    code, out, err = run(capsys, "--timeout", "5")
    assert code == 5 and "cannot reach Telegram at http://127.0.0.1:" in err
    assert "SECRETSECRET" not in out + err


def test_without_a_token_it_says_where_to_get_one(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run(capsys)
    assert code == 1 and "TELEGRAM_BOT_TOKEN is not set" in err and "@BotFather" in err
