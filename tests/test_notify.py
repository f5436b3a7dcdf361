"""Notifiers against real servers on 127.0.0.1: aiosmtpd for email, the Bot API stand-in for Telegram."""

from __future__ import annotations

import socket
import threading
from datetime import date

import pytest

from bot.notify import email as email_notifier
from bot.notify import telegram as telegram_notifier
from bot.notify.alert import Alert
from bot.notify.base import split_text
from bot.settings.models import Settings

SETTINGS = Settings(notify={"telegram_pace_seconds": 0, "retry_base_seconds": 0})
PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 100


def alert(rule="small-cap-trap", severity="warning", title="Small caps <rally> & yields", text="IWM +4.1% & <b>"):
    return Alert(rule_id=rule, session=date(2024, 7, 11), severity=severity, title=title, text=text,
                 values={"pct_change(IWM, 5)": 4.1})


def send(notifier, recipient, alerts, charts=None):
    results = {}
    notifier.send(recipient, alerts, charts or {}, lambda i, d: results.__setitem__(i, d))
    return [results[i] for i in range(len(alerts))]


# -- email ----------------------------------------------------------------------------------

def test_email_sends_one_summary_with_text_html_and_inline_chart(smtp):
    alerts = [alert(), alert("soft-cpi-rotation", "critical", "Soft CPI print")]
    results = send(email_notifier.Notifier(SETTINGS), "", alerts, {1: PNG})
    assert all(r.ok for r in results)
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["me@closebell.test", "partner@closebell.test"]
    [message] = smtp.messages()
    assert message["Subject"] == "Closebell: 2 alerts for 2024-07-11, critical: Soft CPI print"
    assert message["From"] == "bot@closebell.test"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert plain.index("Soft CPI print") < plain.index("Small caps <rally> & yields")
    assert "Small caps &lt;rally&gt; &amp; yields" in html and "<b>" not in html.replace("<body", "")
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content() == PNG
    cid = images[0]["Content-ID"].strip("<>")
    assert f"cid:{cid}" in html


def test_email_logs_in_only_when_a_user_is_given_and_reports_auth_refused(monkeypatch):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    from tests.conftest import SmtpSink, free_port

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.password == b"right"
        return AuthResult(success=ok, handled=False)

    sink, port = SmtpSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
                            "EMAIL_TO": "me@closebell.test", "SMTP_USER": "bot", "SMTP_PASSWORD": "wrong"}.items():
            monkeypatch.setenv(name, value)
        [refused] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
        assert not refused.ok and refused.permanent and "auth refused" in refused.error
        assert "wrong" not in refused.error
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        [accepted] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
        assert accepted.ok and len(sink.envelopes) == 1
    finally:
        controller.stop()


def test_email_reports_a_server_that_drops_the_connection_mid_send(monkeypatch):
    """A server that greets, accepts the envelope, then hangs up on DATA."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        conn.sendall(b"220 drop.test ESMTP\r\n")
        reader = conn.makefile("rb")
        for line in reader:
            verb = line.split(b" ")[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250 drop.test\r\n")
            elif verb in (b"MAIL", b"RCPT"):
                conn.sendall(b"250 OK\r\n")
            elif verb == b"DATA":
                conn.close()
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(listener.getsockname()[1]))
    monkeypatch.setenv("SMTP_SECURITY", "none")
    monkeypatch.setenv("EMAIL_TO", "me@closebell.test")
    [result] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
    listener.close()
    assert not result.ok and not result.permanent
    assert "closed the connection" in result.error


def test_email_to_a_dead_server_is_a_transient_failure(monkeypatch):
    from tests.conftest import free_port
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    monkeypatch.setenv("EMAIL_TO", "me@closebell.test")
    [result] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
    assert not result.ok and not result.permanent and "connection refused" in result.error


@pytest.mark.parametrize("port,setting,expected", [(465, "", "ssl"), (587, "", "starttls"), (2525, "", "auto"),
                                                   (465, "none", "none")])
def test_email_security_defaults_follow_the_port(monkeypatch, port, setting, expected):
    monkeypatch.setenv("SMTP_SECURITY", setting)
    assert email_notifier.security(port) == expected


# -- telegram -------------------------------------------------------------------------------

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


def test_an_alert_chart_is_a_small_png_legible_on_a_phone(data_dir):
    from bot.app.evaluation import prepare
    from bot.settings.rules_file import load_rules
    from bot.notify.charts import alert_chart
    from bot.settings.load import load_series
    from tests.conftest import ROOT
    series = load_series(ROOT / "config" / "series.yaml")
    rules = load_rules(ROOT / "config" / "rules.yaml", series)
    prepared = prepare(rules, series, data_dir=str(data_dir))
    png = alert_chart(prepared.frame, rules[0], "2024-07-11", {n: s.units for n, s in series.items()})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000
    width = int.from_bytes(png[16:20], "big")
    assert 600 <= width <= 1200


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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    import shutil
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_smtp(certificate, monkeypatch):
    """aiosmtpd offering STARTTLS with the test certificate, on a port that implies nothing."""
    import ssl
    from aiosmtpd.controller import Controller
    from tests.conftest import SmtpSink, free_port
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink, port = SmtpSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
    controller.start()
    for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "EMAIL_TO": "me@closebell.test"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SMTP_SECURITY", raising=False)
    yield sink
    controller.stop()


def test_email_upgrades_to_starttls_when_the_server_offers_it(tls_smtp, certificate, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test certificate
    [result] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
    assert result.ok, result.error
    assert len(tls_smtp.envelopes) == 1


def test_email_reports_a_certificate_it_cannot_trust_as_a_tls_error(tls_smtp):
    [result] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
    assert not result.ok and result.error.startswith("TLS error") and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert not tls_smtp.envelopes


def test_email_refuses_to_send_in_clear_when_starttls_is_required_but_missing(smtp, monkeypatch):
    monkeypatch.setenv("SMTP_SECURITY", "starttls")
    [result] = send(email_notifier.Notifier(SETTINGS), "", [alert()])
    assert not result.ok and result.permanent and "SMTP_SECURITY" in result.error
    assert not smtp.envelopes


# -- buttons --------------------------------------------------------------------------------

def keyboard_of(call) -> list[list[dict]]:
    import json
    return json.loads(call.fields["reply_markup"])["inline_keyboard"]


def test_every_telegram_alert_carries_mute_and_why_buttons_that_parse_back(telegram):
    from bot.notify.button_codec import parse_callback
    [result] = send(telegram_notifier.Notifier(SETTINGS), "1001", [alert()])
    assert result.ok
    [row] = keyboard_of(telegram.sent("sendMessage")[0])
    assert [b["text"] for b in row] == ["🔕 Mute 1 day", "🔕 Mute 1 week", "❓ Why?"]
    actions = [parse_callback(b["callback_data"], ["small-cap-trap", "other"]) for b in row]
    assert [(a.kind, a.rule_id, a.session, a.duration and a.duration.days) for a in actions] == [
        ("mute", "small-cap-trap", date(2024, 7, 11), 1), ("mute", "small-cap-trap", date(2024, 7, 11), 7),
        ("why", "small-cap-trap", date(2024, 7, 11), None)]


def test_the_buttons_go_on_the_message_that_carries_the_text(telegram):
    long = alert(text="word " * 400)
    send(telegram_notifier.Notifier(SETTINGS), "1001", [long], {0: PNG})
    photo, message = telegram.messages()
    assert "reply_markup" not in photo.fields and len(keyboard_of(message)[0]) == 3


def test_a_notice_gets_no_buttons(telegram):
    notice = Alert(rule_id="notice:late-data", session=date(2024, 7, 11), severity="warning",
                   title="Closebell notice", text="DGS10 is late", kind="notice")
    send(telegram_notifier.Notifier(SETTINGS), "1001", [notice])
    assert "reply_markup" not in telegram.sent("sendMessage")[0].fields


def test_callback_data_fits_telegrams_64_bytes_even_for_a_64_character_rule_id():
    from bot.notify.button_codec import callback_data, parse_callback
    long_id = "a-very-long-rule-id-" + "x" * 40 + "-end"
    twin = long_id[:-4] + "-two"  # same first 60 characters
    assert len(long_id) == 64
    data = callback_data("m1w", long_id, date(2024, 7, 11), secret="tok")
    assert len(data.encode()) <= 64
    action = parse_callback(data, [twin, long_id], secret="tok")
    assert action.rule_id == long_id and action.duration.days == 7


@pytest.mark.parametrize("tamper", [
    lambda d: d.replace("small-cap-trap", "soft-cpi-rotation"),  # another rule, same signature
    lambda d: d.replace("m1d", "m1w"),  # a longer mute than the button offered
    lambda d: d.replace("20240711", "20240712"),
    lambda d: d.replace("v1|", "v9|"),  # an unknown version
    lambda d: d + "x" * 64,  # longer than Telegram allows
    lambda d: "mute small-cap-trap",
])
def test_a_forged_callback_parses_to_nothing(tamper):
    from bot.notify.button_codec import callback_data, parse_callback
    data = callback_data("m1d", "small-cap-trap", date(2024, 7, 11), secret="tok")
    assert parse_callback(data, ["small-cap-trap", "soft-cpi-rotation"], secret="tok") is not None
    assert parse_callback(tamper(data), ["small-cap-trap", "soft-cpi-rotation"], secret="tok") is None


def test_a_stale_callback_parses_to_nothing():
    from bot.notify.button_codec import callback_data, parse_callback
    data = callback_data("why", "small-cap-trap", date(2024, 7, 11), secret="tok")
    assert parse_callback(data, ["soft-cpi-rotation"], secret="tok") is None  # the rule is gone
    assert parse_callback(data, ["small-cap-trap"], secret="new-token") is None  # made under another token


# -- grouping -------------------------------------------------------------------------------

def burst(n):
    severities = ["warning", "info", "critical", "warning", "info", "warning"]
    return [alert(f"rule-{k}", severities[k % len(severities)], f"Title {k}") for k in range(n)]


def test_more_than_three_alerts_to_one_chat_go_as_one_grouped_message_most_severe_first(telegram):
    alerts = burst(4)
    results = send(telegram_notifier.Notifier(SETTINGS), "1001", alerts, {0: PNG, 2: PNG + b"critical"})
    assert all(r.ok for r in results)
    [call] = telegram.messages()
    assert call.method == "sendPhoto" and call.files["photo"] == PNG + b"critical"  # the most severe's chart
    lines = call.fields["caption"].split("\n")
    assert lines[0].endswith("<b>4 alerts</b> · <i>Thu 2024-07-11</i>")
    assert [line.rsplit(" · ", 1)[1] for line in lines[1:]] == ["rule-2", "rule-0", "rule-3", "rule-1"]
    assert call.fields["disable_notification"] == "false"  # a critical alert is in it
    assert [row[0]["text"] for row in keyboard_of(call)] == ["🔕 rule-2 1d", "🔕 rule-0 1d", "🔕 rule-3 1d",
                                                              "🔕 rule-1 1d"]


def test_three_alerts_still_go_one_by_one(telegram):
    send(telegram_notifier.Notifier(SETTINGS), "1001", burst(3))
    assert len(telegram.sent("sendMessage")) == 3


def test_grouping_false_sends_each_alert_on_its_own(telegram):
    settings = Settings(notify={"telegram_pace_seconds": 0, "grouping": False})
    send(telegram_notifier.Notifier(settings), "1001", burst(5))
    assert len(telegram.sent("sendMessage")) == 5


def test_group_above_sets_the_threshold_and_notices_stay_on_their_own(telegram):
    settings = Settings(notify={"telegram_pace_seconds": 0, "group_above": 1})
    notice = Alert(rule_id="notice:x", session=date(2024, 7, 11), severity="warning", title="Closebell notice",
                   text="late data", kind="notice")
    notifier = telegram_notifier.Notifier(settings)
    alerts = burst(2) + [notice]
    assert notifier.units(alerts) == [[0, 1], [2]]
    send(notifier, "1001", alerts)
    grouped, alone = telegram.sent("sendMessage")
    assert "<b>2 alerts</b>" in grouped.fields["text"] and "late data" in alone.fields["text"]


def test_units_console_one_each_email_the_whole_batch():
    from bot.notify import console
    alerts = burst(5)
    assert console.Notifier(SETTINGS).units(alerts) == [[0], [1], [2], [3], [4]]
    assert email_notifier.Notifier(SETTINGS).units(alerts) == [[0, 1, 2, 3, 4]]
    assert telegram_notifier.Notifier(SETTINGS).units(alerts[:3]) == [[0], [1], [2]]


# -- channel report -------------------------------------------------------------------------

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
