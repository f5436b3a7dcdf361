"""A local CSV file: `date,value` and optional `release_date` and `realtime_start` columns.

This is how tests, benchmarks and offline demos replay real history
(`--data-dir DIR` reads series NAME from `DIR/NAME.csv`). A row whose
release_date is empty is taken as known from the earliest release date in the
file: the only point in time the file can vouch for.

Vintages: with a `realtime_start` column (the day that row's value became
known), a period may appear on several rows, first print first
(`date,value,release_date,realtime_start`); each is one vintage. A period's
empty release_date is then its first realtime_start.

`read` is the one reader of such files (fetch --data-dir, --data-dir on the
analysis commands, replay), and it hands every row to `bot.data.clean`, so a
duplicate date, a negative price, a value that is not a number or a last line
cut mid-way is dropped the same way wherever the file is read, with a warning
naming the file and line.
"""

from __future__ import annotations

import codecs
import csv as csvlib
import io
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bot.data import clean as cleaning
from bot.data.sources.base import BaseSource, between, observations
from bot.errors import DataError
from bot.settings.paths import read_small


# The largest data file read: the real daily histories are under 300 KB (DGS10, 1962 on, is 257 KB), so
# 20 MB is some 60 years of daily rows seventy times over. A 200 MB file would otherwise cost a minute
# and 3 GB before its first bad row was found.
MAX_FILE_BYTES = 20_000_000


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

    A well-formed file (the shipped history, anything the bot writes) is read
    in one vectorized pass (`_fast`); anything that looks off sends the file
    through the careful reader (`_careful`), which names the line of every row
    it drops. Both hand the same columns to `_frame`, so a file reads the same
    either way.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file (each series NAME is read from DIR/NAME.csv)")
    try:
        raw = read_small(path, MAX_FILE_BYTES)  # judged before a byte is read: size, and a regular file
    except ValueError as exc:
        raise DataError(f"{path}: {exc} from a data file (the real histories are under 300 KB)") from None
    except OSError as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    parts = _fast(raw)
    if parts is None:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not a readable CSV ({exc})") from None
        parts = _careful(path, text)
    frame = _frame(path, *parts)
    kept, _ = cleaning.clean(frame, series, today)
    return kept


# A file takes the fast path only when its header is exactly one of these and every byte after it is one of
# _PLAIN: no spaces, tabs, carriage returns or other line breaks, no quotes, no letters (so no 'nan' or 'inf').
_HEADERS = {b"date,value\n": 1, b"date,value,release_date\n": 2,  # header -> commas on every line
            b"date,value,release_date,realtime_start\n": 3}
_PLAIN = b"0123456789-+.eE,\n"
_EARLIEST, _LATEST = cleaning.EARLIEST_DATE.isoformat(), cleaning.LATEST_DATE.isoformat()


def _fast(raw: bytes):
    """(dates, values, release dates, line numbers, realtime starts) of a well-formed file, or None to read
    it carefully.

    Well-formed: the exact header, one row per line, each with every field, no
    blank line, a newline at the end (so no cut last line), every value a number,
    dates that parse, ascending with none repeated. That is every file the
    careful path would read without a remark, so the frame is the same;
    anything else (however harmless) is left to the careful path, which words
    the problem with its file:line.
    """
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    end = raw.find(b"\n") + 1
    commas = _HEADERS.get(raw[:end])
    if commas is None or not raw.endswith(b"\n") or b"\n\n" in raw:
        return None
    body = raw[end:]
    rows = body.count(b"\n")
    if not rows or body.count(b",") != commas * rows or body.translate(None, _PLAIN):
        return None
    try:
        table = pd.read_csv(io.BytesIO(raw), dtype={"date": str, "value": float, "release_date": str,
                                                    "realtime_start": str},
                            keep_default_na=False, na_values=[""], engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if len(table) != rows:
        return None
    values = table["value"].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        return None
    for name in ("date", "release_date")[:commas]:  # pandas wraps 1600-01-03 round to 2184: read carefully
        texts = table[name].dropna()
        if len(texts) and (texts.min() < _EARLIEST or texts.max() > _LATEST):
            return None
    days = pd.to_datetime(table["date"], format="%Y-%m-%d", errors="coerce")
    stamps = days.to_numpy()
    if days.isna().any() or not (stamps[1:] > stamps[:-1]).all():  # ascending, none repeated
        return None
    dated = {}
    for name in ("release_date", "realtime_start")[:commas - 1]:
        texts = table[name]
        dated[name] = pd.to_datetime(texts, format="%Y-%m-%d", errors="coerce")
        if (dated[name].isna() & texts.notna()).any():
            return None
    return days, values, dated.get("release_date"), np.arange(2, rows + 2, dtype=np.int64), \
        dated.get("realtime_start")


def _careful(path: Path, text: str):
    """(dates, values, release dates, line numbers, realtime starts) of any readable file, every dropped row
    named with its line."""
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

    for name in ("date", "release_date"):
        if name in header:
            keep, dropped = cleaning.outside_dates(table[name], name, path, numbers)
            rejected += dropped
            table, numbers = table[keep], numbers[keep]

    days = pd.to_datetime(table["date"], format="%Y-%m-%d", errors="coerce")
    if days.isna().any():
        i = int(days.isna().to_numpy().argmax())
        raise DataError(f"{path}:{numbers.iloc[i]}: date {table['date'].iloc[i]!r} is not YYYY-MM-DD")
    dated = {}
    for name in ("release_date", "realtime_start"):
        if name not in header:
            continue
        texts = table[name].replace("", None)
        dated[name] = pd.to_datetime(texts, format="%Y-%m-%d", errors="coerce")
        bad = dated[name].isna() & texts.notna()
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{path}:{numbers.iloc[i]}: {name} {texts.iloc[i]!r} is not YYYY-MM-DD")
    released, starts = dated.get("release_date"), dated.get("realtime_start")
    text_values = table["value"]
    values = pd.to_numeric(text_values.replace({"": None, ".": None}), errors="coerce")
    not_numbers = values.isna() & ~text_values.isin(["", "."])
    for i in np.flatnonzero(not_numbers.to_numpy()):
        rejected.append(cleaning.Rejection(f"{path}:{numbers.iloc[i]}",
                                           f"value {text_values.iloc[i]!r} is not a number; dropped"))
    keep = ~not_numbers.to_numpy()
    cleaning.reject(rejected)

    return days[keep], values[keep].to_numpy(dtype=float), None if released is None else released[keep], \
        numbers[keep].to_numpy(), None if starts is None else starts[keep]


def _frame(path: Path, dates, values, released, numbers, starts=None) -> pd.DataFrame:
    """The observations frame of a file's rows: a row without a release date is known from its period's first
    realtime_start, else from the earliest release date in the file."""
    release_dates = None
    if starts is not None:
        dates = pd.Series(pd.to_datetime(np.asarray(dates)))
        starts = pd.Series(pd.to_datetime(np.asarray(starts)))
        first = starts.groupby(dates.to_numpy()).transform("min")
        released = first if released is None else pd.Series(pd.to_datetime(np.asarray(released))).fillna(first)
    if released is not None:
        release_dates = released
        known = release_dates.dropna()
        if not known.empty:
            release_dates = release_dates.fillna(known.min())
    return observations(dates, values, release_dates, origin=str(path), lines=numbers, realtime_starts=starts)
