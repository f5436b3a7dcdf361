"""Every way a delivery fails, fed to every notifier that has a server: what Delivery each gives.

One row per (failure, notifier), in the style of test_sources.py: the server is
real and on 127.0.0.1 (aiosmtpd for email, the Bot API stand-in for Telegram,
pytest-httpserver behind apprise's json:// scheme), or a raw socket that
misbehaves the way a broken network does (nothing listening, silence, a hang-up,
bytes of no protocol). The outbox retries what is retryable and gives up on
what is permanent, and `notify-test` prints the error to the user, so each row
pins both, and that the error says what went wrong without a secret in it.

The console has no server: it cannot be refused, time out or be answered
badly, so it has no row here (a closed terminal raises, and the outbox counts
that as a failed attempt it retries).
"""

from __future__ import annotations

import functools
import socket
import threading

import pytest
from werkzeug import Response

from bot.notify import apprise_channel
from bot.notify import email as email_notifier
from bot.notify import telegram as telegram_notifier
from tests.conftest import SmtpSink, free_port
from tests.notifying import SETTINGS, alert, send

SECRETS = {"TELEGRAM_BOT_TOKEN": "123456:TEST", "SMTP_PASSWORD": "hunter2-password", "APPRISE": "hunter2-topic"}
TIMEOUT = 0.5  # seconds: every notifier's own timeout, shortened so a silent server answers fast


class Raw:
    """A TCP server on 127.0.0.1 that misbehaves one way, to every connection:
    'silent' accepts and never answers, 'hangup' closes at once, 'garbage' says something of no protocol."""

    def __init__(self, behaviour: str):
        self.behaviour, self.conns = behaviour, []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.behaviour == "garbage":
                conn.sendall(b"?? this is no protocol at all ??\r\n\r\n")
            if self.behaviour != "silent":
                conn.close()

    def stop(self):
        self.listener.close()
        for conn in self.conns:
            conn.close()


# -- each notifier, pointed at a server that fails one way ----------------------------------------
#
# `server(failure, monkeypatch, request)` starts what fails and sets the environment at it; it returns
# the recipient to send to.

def email_server(failure, monkeypatch, request):
    monkeypatch.setattr(email_notifier, "TIMEOUT", TIMEOUT)
    monkeypatch.setenv("EMAIL_TO", "me@closebell.test")
    monkeypatch.setenv("SMTP_SECURITY", "none")
    monkeypatch.setenv("SMTP_PASSWORD", SECRETS["SMTP_PASSWORD"])  # without SMTP_USER: never sent, never shown
    if failure in ("server error", "refusal", "server error at RCPT"):  # aiosmtpd answering 451 / 550
        from aiosmtpd.controller import Controller

        class Refusing(SmtpSink):
            async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802 - aiosmtpd
                if failure == "server error":
                    envelope.rcpt_tos.append(address)
                    return "250 OK"
                return "451 4.3.0 try again later" if failure == "server error at RCPT" else "550 5.1.1 no such user"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
                return "451 4.3.0 local error, try again later"
        port = free_port()
        controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
        controller.start()
        request.addfinalizer(controller.stop)
    else:
        port = raw_port(failure, request)
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    return ""


def telegram_server(failure, monkeypatch, request):
    real = telegram_notifier.make_bot
    monkeypatch.setattr(telegram_notifier, "make_bot", functools.partial(real, TIMEOUT))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", SECRETS["TELEGRAM_BOT_TOKEN"])
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001")
    if failure in ("server error", "refusal", "timeout"):  # the Bot API stand-in, answering sendMessage so
        from tests.telegram_stub import TelegramStub
        stub = TelegramStub(token=SECRETS["TELEGRAM_BOT_TOKEN"]).start()
        request.addfinalizer(stub.stop)
        if failure == "server error":
            stub.fail("sendMessage", 502, "Bad Gateway")
        elif failure == "refusal":
            stub.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
        else:
            stub.delay("sendMessage", 5)
        url = stub.url
    else:
        url = f"http://127.0.0.1:{raw_port(failure, request)}"
    monkeypatch.setenv("TELEGRAM_BASE_URL", url)
    return "1001"


def apprise_server(failure, monkeypatch, request):
    monkeypatch.setattr(apprise_channel, "TIMEOUT", TIMEOUT)
    if failure in ("server error", "refusal"):
        httpserver = request.getfixturevalue("httpserver")
        handler = httpserver.expect_request("/" + SECRETS["APPRISE"], method="POST")
        handler.respond_with_response(Response("no", status=503 if failure == "server error" else 403))
        port = httpserver.port
    else:
        port = raw_port(failure, request)
    url = f"json://127.0.0.1:{port}/{SECRETS['APPRISE']}"
    monkeypatch.setenv("APPRISE_URLS", url)
    return apprise_channel.key(url)


def raw_port(failure, request) -> int:
    if failure == "refused":
        return free_port()  # nothing listens there
    server = Raw({"timeout": "silent", "dropped": "hangup", "garbage": "garbage"}[failure])
    request.addfinalizer(server.stop)
    return server.port


NOTIFIERS = {"email": (email_notifier, email_server), "telegram": (telegram_notifier, telegram_server),
             "apprise": (apprise_channel, apprise_server)}

# failure, notifier, permanent, words the error holds
ROWS = [
    ("refused", "email", False, "connection refused by 127.0.0.1:"),
    ("refused", "telegram", False, "network error: cannot reach http://127.0.0.1:"),
    ("refused", "apprise", False, "the service did not accept"),
    ("timeout", "email", False, "server closed the connection"),  # smtplib reads a timeout as a hang-up
    ("timeout", "telegram", False, "timed out talking to Telegram at http://127.0.0.1:"),
    ("timeout", "apprise", False, "the service did not accept"),
    ("dropped", "email", False, "server closed the connection"),
    ("dropped", "telegram", False, "network error: cannot reach http://127.0.0.1:"),
    ("dropped", "apprise", False, "the service did not accept"),
    ("garbage", "email", False, "SMTP -1"),
    ("garbage", "telegram", False, "network error: cannot reach http://127.0.0.1:"),
    ("garbage", "apprise", False, "the service did not accept"),
    ("server error", "email", False, "SMTP 451"),
    ("server error", "telegram", False, "Telegram's server answered Bad Gateway at http://127.0.0.1:"),  # a 502
    ("server error", "apprise", False, "the service did not accept"),
    ("refusal", "email", True, "recipients refused: me@closebell.test"),
    ("refusal", "telegram", True, "forbidden: Forbidden: bot was blocked by the user"),
    ("refusal", "apprise", False, "the service did not accept"),  # apprise tells no refusal from an outage
    ("server error at RCPT", "email", False, "SMTP 451"),  # "try again later" is retried, not given up on
]


@pytest.mark.parametrize("failure,channel,permanent,words", ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_every_failure_is_a_delivery_that_says_what_failed_and_whether_to_retry(failure, channel, permanent, words,
                                                                                monkeypatch, request):
    module, server = NOTIFIERS[channel]
    recipient = server(failure, monkeypatch, request)
    [result] = send(module.Notifier(SETTINGS), recipient, [alert()])
    assert not result.ok
    assert (result.permanent, result.retry_after) == (permanent, None)
    assert words in result.error
    assert not [name for name, secret in SECRETS.items() if secret in result.error]
