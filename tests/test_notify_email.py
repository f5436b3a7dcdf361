"""The email notifier against real SMTP servers on 127.0.0.1: aiosmtpd (plain, with AUTH, with STARTTLS)
and a socket server that hangs up mid-send."""

from __future__ import annotations

import socket
import threading

import pytest

from bot.notify import email as email_notifier
from tests.notifying import PNG, SETTINGS, alert, send


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
