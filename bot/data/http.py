"""One HTTP session for every source: timeouts, retries with backoff, an honest User-Agent.

A free source that is briefly overloaded answers 429 or 5xx; retrying with
backoff (and honouring Retry-After) rides that out. A source that answers 200
with an HTML page instead of data is caught by `check_not_html`, because a 200
proves nothing (Stooq's proof-of-work page, Yahoo's consent page).
"""

from __future__ import annotations

import logging
import os

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot import __version__
from bot.errors import SourceError
from bot.settings.env import redact

log = logging.getLogger(__name__)

USER_AGENT = f"Closebell/{__version__} (market-close alert bot; python-requests)"
CONNECT_TIMEOUT = 10.0


def make_session(retries: int = 3, backoff: float | None = None) -> requests.Session:
    if backoff is None:
        backoff = float(os.environ.get("CLOSEBELL_HTTP_BACKOFF", "1.0"))
    retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                  backoff_factor=backoff, backoff_max=60,
                  status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("GET", "HEAD"), respect_retry_after_header=True,
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


_session: requests.Session | None = None


def session() -> requests.Session:
    global _session
    if _session is None:
        _session = make_session()
    return _session


def get(source: str, url: str, params=None, timeout: float = 30.0, headers=None) -> requests.Response:
    """GET or raise SourceError naming the source and what went wrong (never the query's secrets)."""
    shown = redact(url)
    try:
        response = session().get(url, params=params, timeout=(CONNECT_TIMEOUT, timeout), headers=headers)
    except requests.exceptions.RetryError as exc:
        raise SourceError(source, f"gave up after retries: {redact(str(exc.args[0] if exc.args else exc))}",
                          shown) from None
    except requests.exceptions.Timeout:
        raise SourceError(source, f"no answer within {timeout:g}s", shown) from None
    except requests.exceptions.ConnectionError as exc:
        if "Read timed out" in str(exc):  # read timeouts retried to exhaustion arrive as ConnectionError
            raise SourceError(source, f"no answer within {timeout:g}s (after retries)", shown) from None
        raise SourceError(source, f"cannot connect ({_reason(exc)})", shown) from None
    except requests.exceptions.RequestException as exc:
        raise SourceError(source, redact(str(exc)), shown) from None
    if response.status_code != 200:
        raise SourceError(source, f"HTTP {response.status_code} {response.reason or ''}".rstrip()
                          + _snippet(response.text), shown)
    return response


def check_not_html(source: str, response: requests.Response, expected: str) -> str:
    """Return the body, or raise if it is an HTML page rather than `expected` (csv, json)."""
    text = response.text
    head = text.lstrip()[:200].lower()
    ctype = response.headers.get("Content-Type", "").lower()
    if head.startswith(("<!doctype", "<html", "<?xml")) or "<html" in head or "text/html" in ctype:
        raise SourceError(source, f"answered with an HTML page instead of {expected}" + _snippet(text),
                          redact(response.url))
    if not text.strip():
        raise SourceError(source, f"answered with an empty body instead of {expected}", redact(response.url))
    return text


def _snippet(text: str) -> str:
    text = " ".join(text.split())[:120]
    return f": {text!r}" if text else ""


def _reason(exc) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "Network is unreachable", "No route to host", "timed out"):
        if marker in text:
            return marker.lower()
    return redact(text)[:160]
