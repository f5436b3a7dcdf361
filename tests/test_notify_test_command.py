"""`closebell notify-test`: a sample alert with its chart through each configured channel, and the exact
failure per destination with exit code 5."""

from __future__ import annotations


def test_notify_test_sends_a_sample_with_chart_through_each_configured_channel(telegram, smtp):
    from bot.cli import main
    assert main(["notify-test"]) == 0
    assert {c.fields["chat_id"] for c in telegram.sent("sendPhoto")} == {"1001", "1002"}
    [message] = smtp.messages()
    assert any(p.get_content_type() == "image/png" for p in message.walk())


def test_notify_test_names_the_exact_failure_and_exits_5(telegram, capsys, monkeypatch):
    from bot.cli import main
    telegram.known_chats = {"1001"}
    assert main(["notify-test", "--channel", "telegram"]) == 5
    err = capsys.readouterr().err
    assert "telegram:1002: FAILED: unknown chat" in err
