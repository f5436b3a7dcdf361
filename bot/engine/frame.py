"""Everything the engine may see: daily series on the session index, monthly series point in time.

Built from observations (from the store or `--data-dir`) and the session
calendar; pure, so the engine can be tested and benchmarked without I/O.

Alignment rules (users and tests depend on them):
- a daily value missing on a session (a bond-market holiday, a '.' at FRED) is
  carried forward for at most `MAX_CARRY` sessions, then it is missing;
- a monthly series holds, on session t, the latest value whose release date is
  on or before t; `mom_pct` and `yoy_pct` compare that value with the previous
  calendar month's and the same month a year earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_CARRY = 3


@dataclass
class Monthly:
    value: np.ndarray  # latest released value on each session
    mom: np.ndarray  # its % change over the previous calendar month
    yoy: np.ndarray  # its % change over the same month a year earlier
    released: np.ndarray  # 1.0 on the first session on or after each release date
    month: np.ndarray  # the month (datetime64[D]) the session's value describes


@dataclass
class Frame:
    sessions: pd.DatetimeIndex
    daily: dict[str, np.ndarray] = field(default_factory=dict)  # NaN where missing
    age: dict[str, np.ndarray] = field(default_factory=dict)  # sessions since the last real value
    monthly: dict[str, Monthly] = field(default_factory=dict)

    def __len__(self):
        return len(self.sessions)

    def series(self, name: str) -> np.ndarray:
        if name in self.daily:
            return self.daily[name]
        return self.monthly[name].value

    def index_of(self, session) -> int:
        """Position of `session` in the frame (KeyError if it is not a session of the frame)."""
        return self.sessions.get_loc(pd.Timestamp(session))


def daily_on_sessions(values: pd.Series, sessions: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Align a daily series to sessions, carrying a value forward at most MAX_CARRY sessions."""
    values = values[~values.index.duplicated(keep="last")]
    aligned = values.reindex(sessions)
    real = aligned.notna().to_numpy()
    positions = np.where(real, np.arange(len(sessions)), -1)
    last_real = np.maximum.accumulate(positions) if len(positions) else positions
    age = np.where(last_real >= 0, np.arange(len(sessions)) - last_real, np.iinfo(np.int32).max)
    carried = aligned.ffill(limit=MAX_CARRY).to_numpy(dtype=float)
    return carried, age


def monthly_on_sessions(table: pd.DataFrame, sessions: pd.DatetimeIndex) -> Monthly:
    """Point in time: a month's value exists from its release date on."""
    table = table.dropna(subset=["value"])
    if table.empty:  # nothing released yet as of this frame's end
        nothing = np.full(len(sessions), np.nan)
        return Monthly(nothing, nothing, nothing, np.zeros(len(sessions)),
                       np.full(len(sessions), np.datetime64("NaT"), dtype="datetime64[D]"))
    months = table.index.to_period("M")
    by_month = pd.Series(table["value"].to_numpy(dtype=float), index=months)
    by_month = by_month[~by_month.index.duplicated(keep="last")]
    prev = by_month.reindex(months - 1).to_numpy()
    year_ago = by_month.reindex(months - 12).to_numpy()
    values = table["value"].to_numpy(dtype=float)
    mom = (values / prev - 1.0) * 100.0
    yoy = (values / year_ago - 1.0) * 100.0

    release = table["release_date"].fillna(pd.Series(table.index, index=table.index))
    order = np.lexsort((table.index.to_numpy(), release.to_numpy()))
    release_sorted = release.to_numpy()[order]
    # the latest-released row known on each session
    pos = np.searchsorted(release_sorted, sessions.to_numpy(), side="right") - 1
    known = pos >= 0
    pick = order[np.clip(pos, 0, None)]

    def spread(column):
        out = np.full(len(sessions), np.nan)
        out[known] = column[pick[known]]
        return out

    released = np.zeros(len(sessions))
    first_sessions = np.searchsorted(sessions.to_numpy(), np.unique(release_sorted), side="left")
    released[first_sessions[first_sessions < len(sessions)]] = 1.0
    month = np.full(len(sessions), np.datetime64("NaT"), dtype="datetime64[D]")
    month[known] = table.index.to_numpy().astype("datetime64[D]")[pick[known]]
    return Monthly(spread(values), spread(mom), spread(yoy), released, month)


def build(observations: dict[str, pd.DataFrame], frequencies: dict[str, str], sessions: pd.DatetimeIndex) -> Frame:
    """A Frame over `sessions` from observations keyed by series name."""
    frame = Frame(sessions)
    for name, table in observations.items():
        if frequencies.get(name, "daily") == "monthly":
            frame.monthly[name] = monthly_on_sessions(table, sessions)
        else:
            frame.daily[name], frame.age[name] = daily_on_sessions(table["value"], sessions)
    return frame
