"""The Telegram notifier against the Bot API stand-in (tests/telegram_stub.py): escaped HTML, charts as
photos, long texts in pieces, rate limits, and which refusals are permanent."""

from __future__ import annotations

from bot.notify import telegram as telegram_notifier
from bot.notify.base import split_text
from tests.notifying import PNG, SETTINGS, alert, send


def test_telegram_sends_escaped_html_to_each_chat(telegram):
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert result.ok
    [call] = telegram.sent("sendMessage")
    assert call.token == telegram.token and call.fields["chat_id"] == "1001"
    assert call.fields["parse_mode"] == "HTML"
    assert "<b>Small caps &lt;rally&gt; &amp; yields</b>" in call.fields["text"]
    assert "IWM +4.1% &amp; &lt;b&gt;" in call.fields["text"]


def test_telegram_sends_a_chart_as_photo_with_the_text_as_caption(telegram):
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()], {0: PNG})
    assert result.ok
    [call] = telegram.sent("sendPhoto")
    assert call.files["photo"] == PNG
    assert "Small caps &lt;rally&gt;" in call.fields["caption"]
    assert not telegram.sent("sendMessage")


def test_telegram_sends_photo_then_text_when_the_text_is_too_long_for_a_caption(telegram):
    long = alert(text="word " * 400)
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [long], {0: PNG})
    assert result.ok
    assert [c.method for c in telegram.messages()] == ["sendPhoto", "sendMessage"]
    assert "caption" not in telegram.sent("sendPhoto")[0].fields


def test_telegram_splits_a_message_longer_than_telegram_allows(telegram):
    huge = alert(text="\n".join(f"line {i} " + "x" * 80 for i in range(120)))
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [huge])
    assert result.ok
    texts = [c.fields["text"] for c in telegram.sent("sendMessage")]
    assert len(texts) == 3 and all(len(t) <= 4096 for t in texts)
    assert "line 119" in texts[-1]


def test_telegram_honours_retry_after_then_delivers(telegram):
    telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert result.ok
    first, second = telegram.sent("sendMessage")
    assert second.at - first.at >= 0.9


def test_telegram_leaves_a_long_retry_after_to_the_outbox(telegram):
    telegram.fail("sendMessage", 429, "Too Many Requests: retry after 120", retry_after=120)
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert not result.ok and result.retry_after == 120


def test_telegram_resends_as_plain_text_when_html_is_refused(telegram):
    telegram.fail("sendMessage", 400, "Bad Request: can't parse entities: unsupported start tag")
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert result.ok
    first, second = telegram.sent("sendMessage")
    assert "parse_mode" not in second.fields and "Small caps <rally> & yields" in second.fields["text"]


def test_telegram_server_error_is_transient(telegram):
    telegram.fail("sendMessage", 502, "Bad Gateway")
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert not result.ok and not result.permanent


def test_telegram_unknown_chat_is_permanent_with_a_hint(telegram):
    telegram.known_chats = {"1001"}
    [result] = send(telegram_notifier.Notifier(SETTINGS), "999", [alert()])
    assert not result.ok and result.permanent and "TELEGRAM_CHAT_IDS" in result.error


def test_telegram_bad_token_is_permanent_and_never_shows_the_token(telegram, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "999999:WRONGWRONGWRONG")
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert not result.ok and result.permanent and "bad token" in result.error
    assert "WRONGWRONG" not in result.error


def test_split_text_keeps_lines_whole_when_it_can():
    pieces = split_text("aaa\nbbb\nccc", 8)
    assert pieces == ["aaa\nbbb", "ccc"]
