"""BLS public API (v2 without a key): CPI as a fallback to FRED.

Keyless clients get 25 queries a day and 10 years per query, so backfills ask
year ranges in chunks. BLS does not say when a value was released; the store
records the day the bot first saw it instead.
"""

from __future__ import annotations

from bot.data import http
from bot.data.sources.base import BaseSource, between, observations, parse_number

YEARS_PER_QUERY = 10


class Source(BaseSource):
    name = "bls"
    default_base_url = "https://api.bls.gov"

    def fetch(self, symbol, start, end, monthly=False):
        dates, values = [], []
        for first in range(start.year, end.year + 1, YEARS_PER_QUERY):
            last = min(first + YEARS_PER_QUERY - 1, end.year)
            for date_, value in self._chunk(symbol, first, last):
                dates.append(date_)
                values.append(value)
        return between(observations(dates, values), start.replace(day=1), end)

    def _chunk(self, symbol, first, last):
        url = f"{self.base_url}/publicAPI/v2/timeseries/data/{symbol}"
        response = http.get(self.name, url, params={"startyear": first, "endyear": last}, timeout=self.timeout)
        http.check_not_html(self.name, response, "JSON")
        try:
            body = response.json()
        except ValueError:
            raise self.error("answered with something that is not JSON", response.url) from None
        if not isinstance(body, dict) or body.get("status") != "REQUEST_SUCCEEDED":
            message = "; ".join(body.get("message") or []) if isinstance(body, dict) else ""
            raise self.error(f"request not served: {message or body!r:.200}", response.url)
        series = (body.get("Results") or {}).get("series") or []
        if not series:
            raise self.error(f"no series {symbol} in the answer", response.url)
        for row in series[0].get("data") or []:
            period = str(row.get("period", ""))
            if not (period.startswith("M") and period[1:].isdigit() and 1 <= int(period[1:]) <= 12):
                continue  # M13 is the annual average
            yield f"{row.get('year')}-{period[1:]}-01", parse_number(row.get("value"))
