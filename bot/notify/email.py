"""Email over SMTP with the standard library: one summary message per run, charts inline.

Settings (environment only, handed in as bot.settings.env.Environment): SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD
(login only when a user is given), SMTP_SECURITY (`ssl`, `starttls` or `none`;
by default `ssl` on port 465, `starttls` on 587, and on other ports STARTTLS
when the server offers it), EMAIL_FROM, EMAIL_TO (comma separated).

The message is multipart: a plain-text part, and an HTML part with each chart
inline (multipart/related, referenced by Content-ID). Its Message-ID is derived
from the alerts it carries, so a resend after a crash is recognisable as the
same message.
"""

from __future__ import annotations

import hashlib
import html
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bot.notify.base import Delivery
from bot.settings.env import Environment, current, redact

REQUIRED_ENV = ("SMTP_HOST", "EMAIL_TO")
TIMEOUT = 30


def subject(alerts) -> str:
    top = max(alerts, key=lambda a: a.rank)
    sessions = sorted({a.session for a in alerts})
    when = f"{sessions[0]:%Y-%m-%d}" if len(sessions) == 1 else f"{sessions[0]:%Y-%m-%d}..{sessions[-1]:%Y-%m-%d}"
    count = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    return f"Closebell: {count} for {when}, {top.severity}: {top.title}"


def build_message(alerts, charts: dict, sender: str, to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(alerts)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256("|".join(f"{a.rule_id}/{a.session}" for a in alerts).encode()).hexdigest()[:24]
    msg["Message-ID"] = make_msgid(idstring=digest, domain="closebell.local")
    ordered = sorted(range(len(alerts)), key=lambda i: -alerts[i].rank)
    msg.set_content("\n\n".join(alerts[i].plain() for i in ordered) + "\n\n-- Closebell\n")
    cids = {i: make_msgid(domain="closebell.local") for i in ordered if charts.get(i)}
    blocks = []
    for i in ordered:
        alert = alerts[i]
        late = " (late)" if alert.late else ""
        block = (f"<h3 style='margin-bottom:2px'>{html.escape(alert.title)}</h3>"
                 f"<div style='color:#666;font-size:90%'>{alert.session:%a %Y-%m-%d} · "
                 f"{html.escape(alert.rule_id)} · {alert.severity}{late}</div>"
                 f"<p>{html.escape(alert.text)}</p>")
        if i in cids:
            block += f"<img src='cid:{cids[i][1:-1]}' alt='chart for {html.escape(alert.rule_id)}' width='640'>"
        blocks.append(block)
    msg.add_alternative("<html><body style='font-family:sans-serif'>" + "<hr>".join(blocks)
                        + "<p style='color:#999'>-- Closebell</p></body></html>", subtype="html")
    html_part = msg.get_payload()[1]
    for i, cid in cids.items():
        html_part.add_related(charts[i], maintype="image", subtype="png", cid=cid,
                              filename=f"{alerts[i].rule_id}-{alerts[i].session}.png")
    return msg


def security(port: int, environment: Environment | None = None) -> str:
    chosen = (environment if environment is not None else current()).smtp_security
    if chosen in ("ssl", "starttls", "none"):
        return chosen
    return {465: "ssl", 587: "starttls"}.get(port, "auto")


def connect(environment: Environment | None = None) -> smtplib.SMTP:
    """An SMTP connection, secured and logged in as the settings say."""
    environment = environment if environment is not None else current()
    host = environment.smtp_host
    port = environment.smtp_port or 587
    mode = security(port, environment)
    context = ssl.create_default_context()
    if mode == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=TIMEOUT)
        client.ehlo()
        if mode == "starttls" or (mode == "auto" and client.has_extn("starttls")):
            client.starttls(context=context)
            client.ehlo()
    user = environment.smtp_user
    if user:
        client.login(user, environment.smtp_password or "")
    return client


def classify(exc, environment: Environment | None = None) -> Delivery:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Delivery(False, f"auth refused for SMTP_USER ({exc.smtp_code})", permanent=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Delivery(False, f"server does not support this: {exc} (check SMTP_SECURITY)", permanent=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # Each recipient with the server's (code, message). A 4xx is "try again later" (greylisting, a full
        # mailbox, a busy server): retried by the outbox. Only 5xx on every recipient is given up on.
        codes = {who: code for who, (code, _msg) in exc.recipients.items()}
        if codes and all(400 <= code < 500 for code in codes.values()):
            code = next(iter(codes.values()))
            return Delivery(False, f"SMTP {code}: the server asked to try again later for "
                                   f"{', '.join(codes)}")
        return Delivery(False, f"recipients refused: {', '.join(exc.recipients)}", permanent=True)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return Delivery(False, f"sender refused: {exc.sender} ({exc.smtp_code})", permanent=True)
    if isinstance(exc, ssl.SSLError):
        return Delivery(False, f"TLS error: {exc.reason or exc} (check SMTP_SECURITY and SMTP_PORT)")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Delivery(False, "server closed the connection")
    if isinstance(exc, smtplib.SMTPResponseException):
        permanent = 500 <= exc.smtp_code < 600
        return Delivery(False, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent)
    if isinstance(exc, ConnectionRefusedError):
        environment = environment if environment is not None else current()
        return Delivery(False, f"connection refused by {environment.smtp_host}:{environment.smtp_port or 587}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Delivery(False, "timed out talking to the SMTP server")
    return Delivery(False, f"{type(exc).__name__}: {redact(str(exc))}")


class Notifier:
    channel = "email"

    def __init__(self, settings=None, clock=None, environment: Environment | None = None):
        self.settings = settings
        self.env = environment if environment is not None else current()

    def recipients(self) -> list[str]:
        return [""]  # one summary message to every address in EMAIL_TO

    def units(self, alerts) -> list[list[int]]:
        """The whole batch is one unit: it goes as one summary message."""
        return [list(range(len(alerts)))] if alerts else []

    def send(self, recipient: str, alerts, charts, report) -> None:
        to = list(self.env.email_to)
        sender = self.env.email_from or self.env.smtp_user or "closebell@localhost"
        try:
            message = build_message(alerts, charts, sender, to)
            with connect(self.env) as client:
                client.send_message(message, from_addr=sender, to_addrs=to)
        except Exception as exc:  # every failure becomes a Delivery; classify says which
            delivery = classify(exc, self.env)
        else:
            delivery = Delivery(True)
        for i in range(len(alerts)):
            report(i, delivery)
