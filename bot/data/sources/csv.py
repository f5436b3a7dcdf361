"""A local CSV file: `date,value` and an optional `release_date` column.

This is how tests, benchmarks and offline demos replay real history
(`--data-dir DIR` reads series NAME from `DIR/NAME.csv`). A row whose
release_date is empty is taken as known from the earliest release date in the
file: the only point in time the file can vouch for.

`read` is the one reader of such files (fetch --data-dir, --data-dir on the
analysis commands, replay), and it hands every row to `bot.data.clean`, so a
duplicate date, a negative price, a value that is not a number or a last line
cut mid-way is dropped the same way wherever the file is read, with a warning
naming the file and line.
"""

from __future__ import annotations

import csv as csvlib
import io
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bot.data import clean as cleaning
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


def read(path, series=None, today: date | None = None) -> pd.DataFrame:
    """The file's observations, cleaned.

    `series` (a SeriesDef) adds the checks that need units (a price must be
    > 0; no one-day spike past its move limit); `today` adds "no date after
    today". Without them, duplicates, non-numbers, missing values and a cut
    last line are still dropped. Raises DataError for a file that cannot be
    read at all (missing, not UTF-8, no `date,value` header, a date that is not
    YYYY-MM-DD), naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (each series NAME is read from DIR/NAME.csv)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    lines = text.splitlines(keepends=True)
    numbers = [n for n, line in enumerate(lines, start=1) if line.strip()]  # pandas skips blank lines too
    if not numbers:
        raise DataError(f"{path}: empty file; needs a header 'date,value' (optional ',release_date')")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    header = [str(c).strip().lower() for c in table.columns]
    if "date" not in header or "value" not in header:
        raise DataError(f"{path}:{numbers[0]}: needs a header 'date,value' (optional ',release_date'); "
                        f"found {','.join(header)}")
    table.columns = header
    table = table.apply(lambda column: column.str.strip())
    numbers = pd.Series(numbers[1:len(table) + 1], index=table.index)

    rejected: list[cleaning.Rejection] = []
    last = lines[numbers.iloc[-1] - 1] if len(table) else "\n"
    if not last.endswith(("\n", "\r")) and len(table) > 0:
        fields = [f.strip() for f in next(csvlib.reader([last]))]
        above = table.iloc[-21:-1][header].to_numpy().tolist()
        why = cleaning.cut_last_line(fields, above, header)
        if why:
            rejected.append(cleaning.Rejection(
                f"{path}:{numbers.iloc[-1]}", f"last line {last.strip()!r} {why}; it has no newline at the end, "
                                              "so the file was most likely cut while written or copied; dropped"))
            table, numbers = table.iloc[:-1], numbers.iloc[:-1]

    days = pd.to_datetime(table["date"], format="%Y-%m-%d", errors="coerce")
    if days.isna().any():
        i = int(days.isna().to_numpy().argmax())
        raise DataError(f"{path}:{numbers.iloc[i]}: date {table['date'].iloc[i]!r} is not YYYY-MM-DD")
    released = None
    if "release_date" in header:
        texts = table["release_date"].replace("", None)
        released = pd.to_datetime(texts, format="%Y-%m-%d", errors="coerce")
        bad = released.isna() & texts.notna()
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{path}:{numbers.iloc[i]}: release_date {texts.iloc[i]!r} is not YYYY-MM-DD")
    text_values = table["value"]
    values = pd.to_numeric(text_values.replace({"": None, ".": None}), errors="coerce")
    not_numbers = values.isna() & ~text_values.isin(["", "."])
    for i in np.flatnonzero(not_numbers.to_numpy()):
        rejected.append(cleaning.Rejection(f"{path}:{numbers.iloc[i]}",
                                           f"value {text_values.iloc[i]!r} is not a number; dropped"))
    keep = ~not_numbers.to_numpy()
    cleaning.reject(rejected)

    release_dates = None
    if released is not None:
        release_dates = released[keep]
        known = release_dates.dropna()
        if not known.empty:
            release_dates = release_dates.fillna(known.min())
    dates, values, numbers = days[keep], values[keep].to_numpy(dtype=float), numbers[keep]
    frame = observations(dates, values, release_dates, origin=str(path), lines=numbers.to_numpy())
    kept, _ = cleaning.clean(frame, series, today)
    return kept
