"""A local CSV file: `date,value` and an optional `release_date` column.

This is how tests, benchmarks and offline demos replay real history
(`--data-dir DIR` reads series NAME from `DIR/NAME.csv`). A row whose
release_date is empty is taken as known from the earliest release date in the
file: the only point in time the file can vouch for.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bot.data.sources.base import BaseSource, between, observations
from bot.errors import DataError


class Source(BaseSource):
    name = "csv"
    default_base_url = "."

    def path(self, symbol: str) -> Path:
        path = Path(symbol)
        if path.suffix != ".csv":
            path = Path(self.base_url) / f"{symbol}.csv"
        return path

    def fetch(self, symbol, start=None, end=None, monthly=False):
        return between(read(self.path(symbol)), start, end)


def read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file (each series NAME is read from DIR/NAME.csv)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    columns = [c.strip().lower() for c in table.columns]
    if "date" not in columns or "value" not in columns:
        raise DataError(f"{path}: needs a header 'date,value' (optional ',release_date'); found {','.join(columns)}")
    table.columns = columns
    dates = pd.to_datetime(table["date"], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        line = int(dates.isna().to_numpy().argmax()) + 2
        raise DataError(f"{path}:{line}: date {table['date'].iloc[line - 2]!r} is not YYYY-MM-DD")
    releases = None
    if "release_date" in columns:
        releases = pd.to_datetime(table["release_date"].replace("", None), format="%Y-%m-%d", errors="coerce")
        known = releases.dropna()
        if not known.empty:
            releases = releases.fillna(known.min())
    return observations(dates, table["value"], releases)
