"""The channel report (bot.notify.channel_report): which channels are configured, why not, and which
rules go where, with a warning for a channel no rule reaches."""

from __future__ import annotations

from bot.settings.models import Settings


def rule(rule_id, notify=None, severity="warning"):
    from types import SimpleNamespace
    return SimpleNamespace(id=rule_id, notify=notify, severity=severity)


def test_channel_report_says_what_is_configured_why_not_and_where_rules_go(monkeypatch):
    from bot.notify import channel_report
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:ABC")
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001,1002")
    monkeypatch.delenv("APPRISE_URLS", raising=False)
    report = {s.channel: s for s in channel_report(Settings(), [rule("a"), rule("b", ("email",))])}
    assert report["telegram"].configured and report["telegram"].recipients == 2
    assert report["telegram"].rules == ["a"] and not report["telegram"].warning
    assert not report["email"].configured and report["email"].why_not == "set SMTP_HOST, EMAIL_TO"
    assert report["email"].rules == ["b"] and "they go to the console" in report["email"].warning
    assert report["console"].rules == ["a", "b"]
    assert report["apprise"].why_not == "set APPRISE_URLS"


def test_channel_report_warns_when_a_configured_channel_receives_no_rule(monkeypatch):
    from bot.notify import channel_report
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:ABC")
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001")
    settings = Settings(notify={"default": ["console"]})
    [telegram_status] = [s for s in channel_report(settings, [rule("a")]) if s.channel == "telegram"]
    assert telegram_status.configured and telegram_status.rules == []
    assert "no rule routes to it" in telegram_status.warning
    assert "telegram: configured, 1 recipient; 0 rules; warning: configured but no rule" in telegram_status.line()
