"""What every source returns: a date-indexed frame of floats, with release dates where known."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from bot.data import clean as cleaning
from bot.errors import SourceError


def observations(dates, values, release_dates=None, origin: str | None = None, lines=None,
                 realtime_starts=None) -> pd.DataFrame:
    """The one shape sources hand to the store.

    Index `date` (naive midnight timestamps, ascending); column `value`
    (float, NaN where the source said 'no value'); column `release_date` (NaT
    where the source does not know when the period's value first became
    public); column `realtime_start` (the day this row's value became known,
    ALFRED's word; NaT where the source does not say, so the value is taken as
    known from its release date).

    A monthly period may have several rows, one per vintage (distinct
    `realtime_start`, ascending): its first print and each revision. A
    (date, realtime_start) pair given more than once keeps its last row here, so
    each pair is unique, and every value given for it is recorded in
    `frame.attrs` for `bot.data.clean` to judge (conflicting values drop the
    date, with a warning that names `origin` and, for a file, the `lines` each
    row came from).
    """
    # midnight timestamps: datetime64[D] drops any time of day without .normalize() (which also infers a freq)
    days = pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
    index = pd.DatetimeIndex(days, name="date")
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":  # already numbers (the CSV fast path)
        numbers = values.astype(float, copy=False)
    else:
        numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)
    frame = pd.DataFrame({"value": numbers}, index=index)
    if release_dates is None:
        frame["release_date"] = np.full(len(index), np.datetime64("NaT"), dtype="datetime64[ns]")
    else:
        frame["release_date"] = pd.to_datetime(pd.Series(list(release_dates)), errors="coerce").to_numpy()
        frame["release_date"] = frame["release_date"].astype("datetime64[ns]")
    if realtime_starts is None:
        frame["realtime_start"] = np.full(len(index), np.datetime64("NaT"), dtype="datetime64[ns]")
    else:
        frame["realtime_start"] = pd.to_datetime(pd.Series(list(realtime_starts)), errors="coerce") \
            .to_numpy().astype("datetime64[ns]")
    attrs = {}
    if origin:
        attrs[cleaning.ORIGIN] = origin
    if lines is not None:
        attrs[cleaning.LINES] = cleaning.Noted(lines=pd.Series(np.asarray(lines, dtype=np.int64), index=index))
    keys = frame.index if realtime_starts is None else \
        pd.MultiIndex.from_arrays([frame.index, frame["realtime_start"].fillna(pd.Timestamp.min)])
    repeated = keys.duplicated(keep=False)
    if repeated.any():
        dups: dict = {}
        for day, value in zip(frame.index[repeated], frame["value"].to_numpy()[repeated]):
            dups.setdefault(day, []).append(float(value))
        attrs[cleaning.DUPLICATES] = cleaning.Noted(dups)
    frame = frame[~keys.duplicated(keep="last")]
    if realtime_starts is None:
        frame = frame.sort_index()
    else:  # vintages: by period, then first print first (an unknown realtime_start first of all)
        order = np.lexsort((frame["realtime_start"].fillna(pd.Timestamp.min).to_numpy(), frame.index.to_numpy()))
        frame = frame.iloc[order]
    frame.attrs = attrs
    return frame


def between(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    if start is not None:
        frame = frame[frame.index >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame.index <= pd.Timestamp(end)]
    return frame


def known_by(frame: pd.DataFrame, day: date | None) -> pd.DataFrame:
    """Rows public on `day`: a daily value from its date, a monthly one from its release date, and of a
    period's vintages those known by `day` (`realtime_start`), plus its first known vintage, which stands
    in for the period until then (see bot.engine.frame.monthly_on_sessions)."""
    if day is None:
        return frame
    day = pd.Timestamp(day)
    public = frame["release_date"].fillna(pd.Series(frame.index, index=frame.index))
    keep = public <= day
    if "realtime_start" in frame and len(frame):
        later = (frame["realtime_start"] > day).to_numpy()
        if later.any():
            first = ~frame.index.duplicated(keep="first")  # rows are by period, first known vintage first
            keep &= ~later | first
    return frame[keep]


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


class BaseSource:
    """Common settings handling: every source's base URL and timeout are settings."""

    name = "base"
    default_base_url = ""
    default_timeout = 30.0  # seconds; a source that stalls rather than refuses sets a shorter one

    def __init__(self, settings=None):
        self.base_url = ((settings.base_url if settings and settings.base_url else self.default_base_url)
                         .rstrip("/"))
        written = settings.timeout if settings is not None else None
        self.timeout = written if written is not None else self.default_timeout

    def error(self, message, url=None) -> SourceError:
        return SourceError(self.name, message, url)

    def fetch(self, symbol: str, start: date, end: date, monthly: bool = False) -> pd.DataFrame:
        raise NotImplementedError
