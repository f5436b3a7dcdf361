"""What every source returns: a date-indexed frame of floats, with release dates where known."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from bot.errors import SourceError


def observations(dates, values, release_dates=None) -> pd.DataFrame:
    """The one shape sources hand to the store.

    Index `date` (naive midnight timestamps, ascending, unique); column `value`
    (float, NaN where the source said 'no value'); column `release_date` (NaT
    where the source does not know when the value became public).
    """
    index = pd.DatetimeIndex(pd.to_datetime(dates), name="date").normalize().as_unit("ns")
    frame = pd.DataFrame({"value": pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(
        dtype=float)}, index=index)
    if release_dates is None:
        frame["release_date"] = pd.NaT
    else:
        frame["release_date"] = pd.to_datetime(pd.Series(list(release_dates)), errors="coerce").to_numpy()
    frame["release_date"] = frame["release_date"].astype("datetime64[ns]")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame


def between(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    if start is not None:
        frame = frame[frame.index >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame.index <= pd.Timestamp(end)]
    return frame


def parse_number(text) -> float:
    """'$1,234.50' -> 1234.5; '.', '', 'N/A' -> NaN."""
    if text is None:
        return np.nan
    cleaned = str(text).strip().replace("$", "").replace(",", "")
    if cleaned in ("", ".", "N/A", "NA", "-", "null", "None"):
        return np.nan
    try:
        return float(cleaned)
    except ValueError:
        return np.nan


def complete_lines(text: str) -> str:
    """The text without an unterminated last line: a body cut short can end mid-number ("4.1" of "4.18")."""
    if text.endswith("\n") or "\n" not in text:
        return text
    return text[: text.rindex("\n") + 1]


class BaseSource:
    """Common settings handling: every source's base URL and timeout are settings."""

    name = "base"
    default_base_url = ""

    def __init__(self, settings=None):
        self.base_url = ((settings.base_url if settings and settings.base_url else self.default_base_url)
                         .rstrip("/"))
        self.timeout = settings.timeout if settings else 30.0

    def error(self, message, url=None) -> SourceError:
        return SourceError(self.name, message, url)

    def fetch(self, symbol: str, start: date, end: date, monthly: bool = False) -> pd.DataFrame:
        raise NotImplementedError
