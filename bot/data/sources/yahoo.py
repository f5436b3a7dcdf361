"""Yahoo Finance through yfinance: ETFs and indices, closes adjusted for dividends and splits.

yfinance is maintained against Yahoo's anti-bot measures (cookies, crumbs, TLS
fingerprints) that break plain HTTP clients, so this module only adapts its
answer; `to_observations` is the part worth testing.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from bot.data.sources.base import BaseSource, between, observations


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


class Source(BaseSource):
    name = "yahoo"
    default_base_url = "https://query2.finance.yahoo.com"

    def fetch(self, symbol, start, end, monthly=False):
        try:
            import yfinance as yf
        except ImportError:  # pragma: no cover - yfinance is in requirements.txt
            raise self.error("yfinance is not installed") from None
        try:
            history = yf.Ticker(symbol).history(start=start.isoformat(),
                                                end=(end + timedelta(days=1)).isoformat(),
                                                interval="1d", auto_adjust=True, actions=False,
                                                raise_errors=True, timeout=self.timeout)
        except Exception as exc:  # yfinance raises many kinds; all mean "no data from Yahoo"
            raise self.error(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        frame = to_observations(history)
        if frame.empty:
            raise self.error(f"no rows for {symbol} between {start} and {end}")
        return between(frame, start, end)
