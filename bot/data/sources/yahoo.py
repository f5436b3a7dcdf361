"""Yahoo Finance through yfinance: ETFs and indices, closes adjusted for dividends and splits.

yfinance is maintained against Yahoo's anti-bot measures (cookies, crumbs, TLS
fingerprints) that break plain HTTP clients, so this module only adapts its
answer and its errors; `to_observations` and `error_for` are the parts worth testing.

yfinance hides network errors by default: when the network is down it logs
"Failed to get ticker 'IWM' reason: ... Could not resolve host" and raises
`YFTzMissingError: $IWM: possibly delisted; no timezone found`, which sends a
user looking for a delisting instead of a cable. So the call runs with
`yf.config.debug.hide_exceptions = False` (the network error itself is raised),
and yfinance's own log of the reason is kept for the case it still hides it.

yfinance (about a second to import) is loaded with this module, and this
module only when a series reads Yahoo (bot.data.sources imports each source
on first use).
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from datetime import timedelta

import pandas as pd
import requests
import yfinance as yf
from yfinance import exceptions as yfe

from bot.data.http import CONNECTION_LEVEL
from bot.data.sources.base import BaseSource, between, observations
from bot.errors import SourceError, SourceUnreachable

NAME = "yahoo"
SERVICE = "Yahoo Finance"


def to_observations(history: pd.DataFrame) -> pd.DataFrame:
    """yfinance's history frame (tz-aware index, a `Close` column) -> the store's shape."""
    if history is None or history.empty:
        return observations([], [])
    close = history["Close"]
    if isinstance(close, pd.DataFrame):  # yf.download with one ticker gives a one-column frame
        close = close.iloc[:, 0]
    index = close.index
    if getattr(index, "tz", None) is not None:
        index = index.tz_localize(None)
    return observations(index.normalize(), close.to_numpy())


def _curl_reason(text: str) -> str:
    """curl's words without its wrapping.

    'Failed to perform, curl: (6) Could not resolve host: x. See https://curl.se/...' -> 'Could not resolve host: x'.
    """
    text = re.sub(r"^.*?curl: \(\d+\)\s*", "", str(text))
    text = re.sub(r"\.?\s*See https://curl\.se/\S*.*$", "", text)
    return " ".join(text.split())[:200] or "no detail"


try:
    from curl_cffi.requests import exceptions as _curl
    _CURL_TIMEOUTS, _CURL_CONNECTION = (_curl.Timeout,), (_curl.ConnectionError, _curl.ProxyError)
except ImportError:  # pragma: no cover - curl_cffi comes with yfinance
    _CURL_TIMEOUTS, _CURL_CONNECTION = (), ()

# curl's words for "no connection at all", beyond those bot.data.http recognises
_CURL_UNREACHABLE = ("could not resolve host", "could not resolve proxy", "failed to connect", "couldn't connect",
                     "could not connect", "connection refused", "network is unreachable", "no route to host")


def _network_words(text: str) -> bool:
    lowered = text.lower()
    return any(w in lowered for w in _CURL_UNREACHABLE + CONNECTION_LEVEL)


def error_for(exc: BaseException, symbol: str, timeout: float, logged: list[str] = ()) -> SourceError:
    """The SourceError that says what went wrong, from what yfinance raised (and logged) for `symbol`.

    A network failure is SourceUnreachable "cannot reach Yahoo Finance: ...", so `fetch` stops asking the
    network; Yahoo refusing (429) or having no data for the symbol says so; anything else keeps its type name.
    """
    if isinstance(exc, yfe.YFRateLimitError):
        return SourceError(NAME, f"{SERVICE} is rate limiting this address (HTTP 429 Too Many Requests); "
                                 "it usually lifts within the hour")
    if isinstance(exc, (*_CURL_TIMEOUTS, requests.exceptions.Timeout, TimeoutError)) and not (
            isinstance(exc, _CURL_CONNECTION) and _network_words(str(exc))):
        return SourceError(NAME, f"{SERVICE} did not answer within {timeout:g}s")
    if isinstance(exc, (*_CURL_CONNECTION, requests.exceptions.ConnectionError, ConnectionError)) or (
            isinstance(exc, OSError) and _network_words(str(exc))):
        return SourceUnreachable(NAME, f"cannot reach {SERVICE}: {_curl_reason(str(exc))}")
    if isinstance(exc, yfe.YFTickerMissingError):
        hidden = [m for m in logged if _network_words(m)]
        if hidden:  # yfinance logged the network error and raised "possibly delisted" instead
            return SourceUnreachable(NAME, f"cannot reach {SERVICE}: {_curl_reason(hidden[-1])}")
        return SourceError(NAME, f"{SERVICE} has no data for {symbol}: {str(exc).split(': ', 1)[-1]}")
    return SourceError(NAME, f"{type(exc).__name__}: {str(exc)[:200]}")


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextmanager
def _yfinance_raising():
    """yfinance raises what went wrong (not 'possibly delisted'), and its log of it is kept."""
    logger = logging.getLogger("yfinance")
    kept = _Kept()
    logger.addHandler(kept)
    before = yf.config.debug.hide_exceptions
    yf.config.debug.hide_exceptions = False
    try:
        yield kept.messages
    finally:
        yf.config.debug.hide_exceptions = before
        logger.removeHandler(kept)


class Source(BaseSource):
    name = NAME
    default_base_url = "https://query2.finance.yahoo.com"

    def fetch(self, symbol, start, end, monthly=False):
        with _yfinance_raising() as logged:
            try:
                history = yf.Ticker(symbol).history(start=start.isoformat(),
                                                    end=(end + timedelta(days=1)).isoformat(),
                                                    interval="1d", auto_adjust=True, actions=False,
                                                    timeout=self.timeout)
            except Exception as exc:  # yfinance raises many kinds; error_for says which is which
                raise error_for(exc, symbol, self.timeout, logged) from None
        frame = to_observations(history)
        if frame.empty:
            raise self.error(f"no rows for {symbol} between {start} and {end}")
        return between(frame, start, end)
