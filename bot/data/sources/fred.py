"""FRED (Federal Reserve Bank of St. Louis): yields and CPI.

Without a key, the graph CSV endpoint. Its header changed in 2024 from
`DATE,<ID>` to `observation_date,<ID>`, so columns are read by position.
Missing days are `.` or empty. DGS10/DGS2 arrive a business day late, which is
why Treasury is the yields' primary and FRED their fallback.

With FRED_API_KEY, the API (`series/observations`): for a daily series its
current values; for a monthly series every vintage (ALFRED), asked with a
real-time period spanning all time (`realtime_start=1776-07-04`,
`realtime_end=9999-12-31`, the default `output_type=1`): one row per period and
vintage, each with the `realtime_start` its value became known on. A period's
first row is its first print, and that row's realtime_start its release date;
later rows are revisions. Initial releases only (`output_type=4`) would lose the
revisions, and the current vintage alone passes revised values off as what
was known on the day. For periods older than ALFRED's first vintage of the
series, the first row is that vintage (known from its date, later than the
period's real release). FRED asks clients to stay near 2 requests a second.
"""

from __future__ import annotations

import io
import time

import pandas as pd

from bot.data import http
from bot.data.sources.base import BaseSource, between, observations
from bot.settings import env

_MIN_INTERVAL = 0.5  # seconds between API requests
_last_request = 0.0


class Source(BaseSource):
    name = "fred"
    default_base_url = "https://fred.stlouisfed.org"
    api_base_url = "https://api.stlouisfed.org"

    def __init__(self, settings=None):
        super().__init__(settings)
        if settings and settings.base_url:
            self.api_base_url = self.base_url

    def fetch(self, symbol, start, end, monthly=False):
        key = env.get("FRED_API_KEY")
        if key:
            return self._api(symbol, start, end, monthly, key)
        return self._graph_csv(symbol, start, end)

    def _graph_csv(self, symbol, start, end):
        url = f"{self.base_url}/graph/fredgraph.csv"
        params = {"id": symbol, "cosd": start.isoformat(), "coed": end.isoformat()}
        response = http.get(self.name, url, params=params, timeout=self.timeout)
        text = http.check_not_html(self.name, response, "CSV")  # whole: http.get refuses a short body
        try:
            table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise self.error(f"unreadable CSV: {exc}", response.url) from None
        if table.shape[1] < 2:
            raise self.error(f"expected two columns (date, {symbol}), got {list(table.columns)}", response.url)
        dates = pd.to_datetime(table.iloc[:, 0], format="%Y-%m-%d", errors="coerce")
        if len(table) and dates.isna().all():
            raise self.error("first column holds no YYYY-MM-DD dates", response.url)
        keep = dates.notna()
        return between(observations(dates[keep], table.iloc[:, 1][keep]), start, end)

    def _get_json(self, path, params):
        global _last_request
        wait = _MIN_INTERVAL - (time.monotonic() - _last_request)
        if wait > 0:
            time.sleep(wait)
        _last_request = time.monotonic()
        response = http.get(self.name, f"{self.api_base_url}{path}", params=params, timeout=self.timeout)
        http.check_not_html(self.name, response, "JSON")
        try:
            body = response.json()
        except ValueError:
            raise self.error("answered with something that is not JSON", env.redact(response.url)) from None
        if not isinstance(body, dict) or "observations" not in body:
            message = body.get("error_message") if isinstance(body, dict) else None
            raise self.error(message or "JSON without 'observations'", env.redact(response.url))
        return body["observations"]

    def _api(self, symbol, start, end, monthly, key):
        params = {"series_id": symbol, "api_key": key, "file_type": "json",
                  "observation_start": start.isoformat(), "observation_end": end.isoformat()}
        if not monthly:
            rows = self._get_json("/fred/series/observations", params)
            return between(observations([r.get("date") for r in rows], [r.get("value") for r in rows]), start, end)
        rows = [r for r in self._get_json("/fred/series/observations", dict(
            params, realtime_start="1776-07-04", realtime_end="9999-12-31")) if isinstance(r, dict)]
        first_known: dict = {}  # period -> its first vintage's realtime_start: the day it was first published
        for row in rows:
            day, known = row.get("date"), row.get("realtime_start")
            if day and known and (day not in first_known or known < first_known[day]):
                first_known[day] = known
        return between(observations([r.get("date") for r in rows], [r.get("value") for r in rows],
                                    [first_known.get(r.get("date")) for r in rows],
                                    realtime_starts=[r.get("realtime_start") for r in rows]), start, end)
