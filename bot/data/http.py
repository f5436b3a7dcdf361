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
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot import __version__
from bot.errors import SourceError, SourceUnreachable
from bot.settings.env import redact

log = logging.getLogger(__name__)

USER_AGENT = f"Closebell/{__version__} (market-close alert bot; python-requests)"
CONNECT_TIMEOUT = 10.0


RETRY_AFTER_MAX = 60  # seconds; urllib3 would otherwise sleep up to 6 hours on a server's say-so

# The most a source's answer may hold, counted after decompression: the largest real one (FRED's whole
# daily DGS10 history, Nasdaq's ten years of IWM) is well under 1 MB. A server can send a gzip bomb
# (3 MB on the wire, 1.5 GB unpacked) or simply never stop; either is refused at this many bytes.
MAX_RESPONSE_BYTES = 20_000_000
CHUNK_BYTES = 64 * 1024  # urllib3 >= 2.6 decompresses at most this much per read, so memory stays bounded


def make_session(retries: int = 3, backoff: float | None = None, read_retries: int | None = None
                 ) -> requests.Session:
    """A session that retries refused connections, 429 and 5xx; `read_retries` stalls (default: retries)."""
    if backoff is None:
        backoff = float(os.environ.get("CLOSEBELL_HTTP_BACKOFF", "1.0"))
    read = retries if read_retries is None else read_retries
    retry = Retry(total=retries, connect=retries, read=read, status=retries,
                  backoff_factor=backoff, backoff_max=60,
                  status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("GET", "HEAD"), respect_retry_after_header=True,
                  retry_after_max=RETRY_AFTER_MAX, raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


_sessions: dict[bool, requests.Session] = {}


def session(retry_stalls: bool = True) -> requests.Session:
    """The shared session; `retry_stalls=False` for a source whose stall is not worth waiting out twice."""
    if retry_stalls not in _sessions:
        _sessions[retry_stalls] = make_session() if retry_stalls else make_session(read_retries=0)
    return _sessions[retry_stalls]


def get(source: str, url: str, params=None, timeout: float = 30.0, headers=None,
        retry_stalls: bool = True) -> requests.Response:
    """GET or raise SourceError naming the source and what went wrong (never the query's secrets)."""
    shown = redact(url)
    stalls = session(retry_stalls)
    connect = min(CONNECT_TIMEOUT, timeout)
    try:
        response = stalls.get(url, params=params, timeout=(connect, timeout), headers=headers, stream=True)
        _read_capped(source, response, shown)
    except requests.exceptions.RetryError as exc:
        raise SourceError(source, f"gave up after retries: {redact(str(exc.args[0] if exc.args else exc))}",
                          shown) from None
    except requests.exceptions.ChunkedEncodingError as exc:  # not a ConnectionError: the server did answer
        raise SourceError(source, cut_short(exc), shown) from None
    except requests.exceptions.ConnectTimeout:  # before Timeout, its other parent: the host never answered
        raise SourceUnreachable(source, f"cannot connect (no answer to connect within {connect:g}s)",
                                shown) from None
    except requests.exceptions.Timeout:
        raise SourceError(source, f"no answer within {timeout:g}s", shown) from None
    except requests.exceptions.ConnectionError as exc:
        if "Read timed out" in str(exc):  # read timeouts retried to exhaustion arrive as ConnectionError
            tries = _tries(stalls)
            raise SourceError(source, f"no answer within {timeout:g}s" + (f" ({tries} tries)" if tries > 1 else ""),
                              shown) from None
        reason = _reason(exc)
        if reason in CONNECTION_LEVEL:
            raise SourceUnreachable(source, f"cannot connect ({reason})", shown) from None
        raise SourceError(source, f"cannot connect ({reason})", shown) from None
    except requests.exceptions.RequestException as exc:
        raise SourceError(source, redact(str(exc)), shown) from None
    if response.status_code != 200:
        raise SourceError(source, f"HTTP {response.status_code} {response.reason or ''}".rstrip()
                          + _snippet(response.text), shown)
    return response


def _read_capped(source: str, response: requests.Response, shown: str) -> None:
    """Read the body in chunks, counting decompressed bytes; refuse it past MAX_RESPONSE_BYTES.

    The body is kept on the response (`.content`, `.text`, `.json()` read it as
    always). The connection is closed whatever happens: an answer refused
    half-way is not read to its end.
    """
    chunks, total = [], 0
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            total += len(chunk)
            if total > MAX_RESPONSE_BYTES:
                raise SourceError(source, f"answered with more than {MAX_RESPONSE_BYTES:,} bytes (counted "
                                          "unpacked); refused: no real answer is that large", shown)
            chunks.append(chunk)
    finally:
        response.close()
    response._content = b"".join(chunks)  # what requests itself sets when it reads the body whole


def cut_short(exc) -> str:
    """The message for a body that ended before its Content-Length (urllib3 2 enforces it).

    requests wraps urllib3's IncompleteRead(partial, expected) in a ProtocolError
    in a ChunkedEncodingError; a chunked body that stops mid-chunk arrives the
    same way without the counts. Either way the answer is incomplete, and a
    parser must never see it: the last line could stop inside a number.
    """
    found = exc
    for _ in range(4):  # walk ChunkedEncodingError -> ProtocolError -> IncompleteRead
        if isinstance(found, urllib3.exceptions.IncompleteRead):
            got, more = int(found.partial), int(found.expected)
            return f"the answer was cut short: {got} of {got + more} bytes arrived"
        nested = [a for a in getattr(found, "args", ()) if isinstance(a, BaseException)]
        if not nested:
            break
        found = nested[-1]
    return "the answer was cut short: the connection closed before the whole body arrived"


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
    text = redact(" ".join(text.split()))[:120]  # a server may echo the query, key included
    return f": {text!r}" if text else ""


def _tries(session) -> int:
    retry = session.get_adapter("http://").max_retries
    return 1 + (retry.read if retry.read is not None else retry.total or 0)


# What a failure to reach a host says, as `_reason` words it. Each means no HTTP conversation took place:
# the network (or that host) is down, not the service misbehaving. `fetch.update` stops asking the
# network after one of these (see bot/data/fetch.py).
CONNECTION_LEVEL = ("connection refused", "name or service not known", "temporary failure in name resolution",
                    "network is unreachable", "no route to host", "timed out", "nodename nor servname provided",
                    "no address associated with hostname")


def _reason(exc) -> str:
    text = str(exc)
    lowered = text.lower()
    for marker in CONNECTION_LEVEL:
        if marker in lowered:
            return marker
    return redact(text)[:160]
