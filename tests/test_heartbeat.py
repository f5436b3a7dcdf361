"""The dead-man ping against a real HTTP server on 127.0.0.1, answering like healthchecks.io ("OK", 200)."""

from __future__ import annotations

import logging

from werkzeug import Response

from bot.notify import heartbeat

UUID = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


def ping_url(httpserver) -> str:
    return httpserver.url_for(f"/{UUID}")


def test_a_successful_session_gets_a_get_to_the_url(httpserver):
    httpserver.expect_oneshot_request(f"/{UUID}", method="GET").respond_with_data("OK")
    assert heartbeat.ping(ping_url(httpserver), ok=True)
    [(request, _response)] = httpserver.log
    assert request.method == "GET" and request.path == f"/{UUID}"


def test_a_failed_session_posts_its_reason_to_url_fail(httpserver):
    httpserver.expect_oneshot_request(f"/{UUID}/fail", method="POST").respond_with_data("OK")
    assert heartbeat.ping(ping_url(httpserver), ok=False, reason="IWM: data late after 20:00 ET")
    [(request, _response)] = httpserver.log
    assert request.path == f"/{UUID}/fail" and request.get_data(as_text=True) == "IWM: data late after 20:00 ET"


def test_fail_keeps_a_query_string_after_the_path():
    assert heartbeat.fail_url("https://hc-ping.com/key/backup?create=1") == "https://hc-ping.com/key/backup/fail?create=1"


def test_a_dead_or_refusing_service_never_raises_and_never_logs_the_uuid(httpserver, caplog):
    from tests.conftest import free_port
    caplog.set_level(logging.INFO, logger="bot")
    httpserver.expect_request(f"/{UUID}").respond_with_response(Response("not found", status=404))
    assert heartbeat.ping(ping_url(httpserver), ok=True) is False
    assert heartbeat.ping(f"http://127.0.0.1:{free_port()}/{UUID}", ok=False, reason="x", timeout=2) is False
    assert heartbeat.ping("not a url", ok=True) is False
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("bot")]
    assert len(lines) == 3 and "HTTP 404" in lines[0] and "ConnectionError" in lines[1]
    assert not [line for line in lines if UUID in line]


def test_without_a_url_nothing_is_sent(httpserver, monkeypatch):
    monkeypatch.delenv("HEARTBEAT_URL", raising=False)
    assert heartbeat.ping_from_env(ok=True) is False
    assert httpserver.log == []
