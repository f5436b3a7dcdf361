"""The apprise channel against a real HTTP server on 127.0.0.1, through apprise's own json:// scheme.

apprise's JSON notification POSTs {"version", "title", "message", "type",
"attachments": [{"filename", "base64", "mimetype"}]} to the URL's host and path.
"""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest
from werkzeug import Response

from bot.notify import apprise_channel
from bot.notify.alert import Alert
from bot.settings.models import Settings

SETTINGS = Settings(notify={"telegram_pace_seconds": 0})
PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 50


def alert(rule="small-cap-trap", severity="warning", title="Small caps rally"):
    return Alert(rule_id=rule, session=date(2024, 7, 11), severity=severity, title=title, text="IWM +4.1% in 5 sessions")


def apprise_url(httpserver, path="/hook") -> str:
    return f"json://127.0.0.1:{httpserver.port}{path}"


def send(alerts, charts=None, recipient=None):
    notifier = apprise_channel.Notifier(SETTINGS)
    results = {}
    for key in ([recipient] if recipient else notifier.recipients()):
        notifier.send(key, alerts, charts or {}, lambda i, d: results.__setitem__(i, d))
    return [results[i] for i in range(len(alerts))]


def test_an_alert_arrives_as_apprise_json_with_the_chart_attached(httpserver, monkeypatch):
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("APPRISE_URLS", apprise_url(httpserver))
    [result] = send([alert(severity="critical")], {0: PNG})
    assert result.ok, result.error
    [(request, _response)] = httpserver.log
    body = json.loads(request.data)
    assert body["title"] == "Small caps rally" and body["type"] == "failure"
    assert "small-cap-trap · critical" in body["message"] and "IWM +4.1%" in body["message"]
    [attachment] = body["attachments"]
    assert attachment["mimetype"] == "image/png" and base64.b64decode(attachment["base64"]) == PNG
    assert attachment["filename"] == "small-cap-trap-2024-07-11.png"


def test_each_url_is_its_own_recipient_keyed_without_its_secret(httpserver, monkeypatch):
    monkeypatch.setenv("APPRISE_URLS", f"{apprise_url(httpserver, '/a')}, {apprise_url(httpserver, '/b')}")
    keys = apprise_channel.Notifier(None).recipients()
    assert len(keys) == 2 and all(len(k) == 8 and "127.0.0.1" not in k for k in keys)
    httpserver.expect_request("/b", method="POST").respond_with_data("ok")
    [result] = send([alert()], recipient=keys[1])
    assert result.ok
    assert [r.path for r, _ in httpserver.log] == ["/b"]


def test_a_refusing_service_is_a_failed_delivery_that_never_shows_the_url(httpserver, monkeypatch):
    httpserver.expect_request("/hook", method="POST").respond_with_response(Response("no", status=500))
    monkeypatch.setenv("APPRISE_URLS", apprise_url(httpserver) + "?secret=hunter2")
    [result] = send([alert()])
    assert not result.ok and "did not accept" in result.error
    assert "hunter2" not in result.error and "127.0.0.1" not in result.error


def test_a_url_apprise_does_not_understand_is_a_permanent_failure(monkeypatch):
    monkeypatch.setenv("APPRISE_URLS", "nosuchservice://token@host")
    [result] = send([alert()])
    assert not result.ok and result.permanent and "APPRISE_URLS" in result.error and "token" not in result.error


def test_no_log_line_shows_an_apprise_url(httpserver, monkeypatch, caplog):
    import logging
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/topic-hunter2", method="POST").respond_with_response(Response("no", status=500))
    monkeypatch.setenv("APPRISE_URLS", f"nosuchservice://hunter2@host,{apprise_url(httpserver, '/topic-hunter2')}")
    notifier = apprise_channel.Notifier(SETTINGS)
    for key in notifier.recipients():
        notifier.send(key, [alert()], {}, lambda i, d: None)
    assert any(r.name == "apprise" for r in caplog.records)  # apprise did speak
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("apprise", "bot")]
    assert not [line for line in ours if "hunter2" in line]  # urllib3's debug lines are off in bot.logs


def test_many_alerts_at_once_go_as_one_grouped_notification(httpserver, monkeypatch):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("APPRISE_URLS", apprise_url(httpserver))
    alerts = [alert(f"r{k}", s) for k, s in enumerate(["info", "warning", "critical", "warning"])]
    results = send(alerts)
    assert all(r.ok for r in results)
    [(request, _response)] = httpserver.log
    body = json.loads(request.data)
    assert body["title"] == "Closebell: 4 alerts" and body["message"].split("\n")[0].startswith("[critical]")


def test_apprise_is_a_channel_for_routing_and_notify(monkeypatch, httpserver):
    from bot.notify import configured
    from bot.notify.routing import destinations
    monkeypatch.setenv("APPRISE_URLS", apprise_url(httpserver))
    assert configured("apprise")
    [key] = destinations(["apprise"])
    assert key.startswith("apprise:") and "127.0.0.1" not in key
    Settings(notify={"default": ["apprise"], "admin": "apprise"})  # a valid channel name in settings.yaml


@pytest.fixture(autouse=True)
def _no_apprise_urls_leak(monkeypatch):
    monkeypatch.delenv("APPRISE_URLS", raising=False)
