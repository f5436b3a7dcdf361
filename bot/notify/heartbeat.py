"""Dead-man ping, healthchecks.io convention: an outside service pages the user when the bot goes quiet.

HEARTBEAT_URL (environment only) is a ping URL such as
`https://hc-ping.com/<uuid>`. After each successful session the bot GETs it;
after a failed one it POSTs the reason to `<URL>/fail` (healthchecks.io keeps a
ping's request body as its diagnostic text). When the pings stop or a /fail
arrives, the service notifies the user by its own channels.

A ping never raises and never holds the session up for long (short timeout).
The URL's path and query carry the secret (the UUID, or ping key and slug),
so only the scheme and host ever reach a log line. The app imports this module
(and so requests) only when HEARTBEAT_URL is set.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import requests

from bot.settings.env import Environment, current

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds
REASON_LIMIT = 10_000  # characters; healthchecks.io keeps the first 100 kB of a body


def shown(url: str) -> str:
    """The URL as it may be logged: scheme and host only."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme or '?'}://{parts.hostname or '?'}/…"
    except ValueError:
        return "<HEARTBEAT_URL>"


def fail_url(url: str) -> str:
    """`<URL>/fail`, keeping any query string after the path."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/fail", parts.query, ""))


def ping(url: str | None, ok: bool, reason: str = "", timeout: float = TIMEOUT) -> bool:
    """Signal success (GET url) or failure (POST url/fail with `reason`); True when the service answered 2xx.

    With no URL, does nothing and returns False. Never raises.
    """
    if not url:
        return False
    try:
        if ok:
            response = requests.get(url, timeout=timeout)
        else:
            response = requests.post(fail_url(url), data=(reason or "failed")[:REASON_LIMIT].encode("utf-8"),
                                     headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=timeout)
    except Exception as exc:  # a ping must never break a session; the reason may carry the URL, so not shown
        log.warning("heartbeat to %s failed: %s", shown(url), type(exc).__name__)
        return False
    if 200 <= response.status_code < 300:
        log.info("heartbeat (%s) sent to %s", "ok" if ok else "fail", shown(url))
        return True
    log.warning("heartbeat to %s answered HTTP %d", shown(url), response.status_code)
    return False


def ping_from_env(ok: bool, reason: str = "", environment: Environment | None = None) -> bool:
    """`ping` with HEARTBEAT_URL from the environment (nothing happens when it is unset)."""
    return ping((environment if environment is not None else current()).heartbeat_url, ok, reason)
