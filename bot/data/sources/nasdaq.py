"""Nasdaq's historical quotes API: a keyless fallback for ETF and index closes.

Closes are as traded (not adjusted for dividends), so a fallback day is off by
the dividend on ex-dates; percentage moves on other days are exact. The symbol
may carry an asset class: `IWM` (an ETF), `index:COMP`, `stocks:AAPL`.

api.nasdaq.com stalls (no answer, no error) for clients that do not look like
its own web page, so the request carries the headers www.nasdaq.com's script
sends, and a short timeout: a stall should cost seconds, not the evening.
"""

from __future__ import annotations

import pandas as pd

from bot.data import http
from bot.data.sources.base import BaseSource, between, observations, parse_number

HEADERS = {  # what the browser sends when www.nasdaq.com asks api.nasdaq.com for a table
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36",
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-US,en;q=0.9",
    "Origin": "https://www.nasdaq.com",
    "Referer": "https://www.nasdaq.com/",
}


class Source(BaseSource):
    name = "nasdaq"
    default_base_url = "https://api.nasdaq.com"
    default_timeout = 10.0

    def fetch(self, symbol, start, end, monthly=False):
        assetclass, _, ticker = symbol.rpartition(":")
        url = f"{self.base_url}/api/quote/{ticker}/historical"
        params = {"assetclass": assetclass or "etf", "fromdate": start.isoformat(),
                  "todate": end.isoformat(), "limit": 9999}
        response = http.get(self.name, url, params=params, timeout=self.timeout,
                            headers=HEADERS, retry_stalls=False)
        http.check_not_html(self.name, response, "JSON")
        try:
            body = response.json()
        except ValueError:
            raise self.error("answered with something that is not JSON", response.url) from None
        data = body.get("data") if isinstance(body, dict) else None
        if not data:
            status = (body.get("status") or {}) if isinstance(body, dict) else {}
            messages = "; ".join(m.get("errorMessage", "") for m in status.get("bCodeMessage") or [] if m)
            raise self.error(f"no data for {ticker}" + (f": {messages}" if messages else ""), response.url)
        rows = ((data.get("tradesTable") or {}).get("rows")) or []
        dates = pd.to_datetime([r.get("date") for r in rows], format="%m/%d/%Y", errors="coerce")
        values = [parse_number(r.get("close")) for r in rows]
        keep = ~dates.isna()
        return between(observations(dates[keep], [v for v, k in zip(values, keep) if k]), start, end)
