"""Logging (bot.logs): a secret's value never reaches a log line, only its name."""

from __future__ import annotations


def test_secrets_never_reach_a_log_line(monkeypatch, capsys):
    import logging
    from bot import logs
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRETSECRETSECRET")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2hunter2")
    logs.setup("INFO")
    logging.getLogger("bot.test").warning("url https://x/bot123456:SECRETSECRETSECRET/send pw hunter2hunter2")
    err = capsys.readouterr().err
    assert "SECRET" not in err and "hunter2" not in err
    assert "<TELEGRAM_BOT_TOKEN>" in err and "<SMTP_PASSWORD>" in err
