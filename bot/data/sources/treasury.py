"""US Treasury daily par yield curve CSV: the first source to publish yields after the close.

One file per year, newest day first, `Date` as MM/DD/YYYY, one column per tenor
("2 Yr", "10 Yr"). Columns are chosen by header, never by position, because
Treasury adds tenors over time (the 4-month bill in 2022, 1.5-month in 2025).
"""

from __future__ import annotations

import io

import pandas as pd

from bot.data import http
from bot.data.sources.base import BaseSource, between, observations

PATH = ("/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/{year}/all"
        "?type=daily_treasury_yield_curve&field_tdr_date_value={year}&page&_format=csv")


class Source(BaseSource):
    name = "treasury"
    default_base_url = "https://home.treasury.gov"

    def fetch(self, symbol, start, end, monthly=False):
        dates, values = [], []
        for year in range(start.year, end.year + 1):
            year_dates, year_values = self._year(symbol, year)
            dates += year_dates
            values += year_values
        return between(observations(dates, values), start, end)

    def _year(self, column, year):
        url = self.base_url + PATH.format(year=year)
        response = http.get(self.name, url, timeout=self.timeout)
        text = http.check_not_html(self.name, response, "CSV")  # whole: http.get refuses a short body
        try:
            table = pd.read_csv(io.StringIO(text), dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as exc:
            raise self.error(f"unreadable CSV for {year}: {exc}", url) from None
        table.columns = [str(c).strip() for c in table.columns]
        if "Date" not in table.columns:
            raise self.error(f"CSV for {year} has no 'Date' column (columns: {', '.join(table.columns[:8])})", url)
        if column not in table.columns:
            tenors = ", ".join(c for c in table.columns if c != "Date")
            raise self.error(f"no column '{column}' in the {year} CSV (tenors: {tenors})", url)
        dates = pd.to_datetime(table["Date"], format="%m/%d/%Y", errors="coerce")
        bad = int(dates.isna().sum())
        if bad == len(table) and len(table):
            raise self.error(f"no readable MM/DD/YYYY dates in the {year} CSV", url)
        table = table[dates.notna()]
        return list(dates[dates.notna()]), list(table[column])
