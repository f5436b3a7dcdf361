"""Everything the engine may see: daily series on the session index, monthly series point in time.

Built from observations (from the store or `--data-dir`) and the session
calendar; pure, so the engine can be tested and benchmarked without I/O.

Alignment rules (users and tests depend on them):
- a daily value missing on a session (a bond-market holiday, a '.' at FRED) is
  carried forward for at most `MAX_CARRY` sessions, then it is missing;
- a monthly series holds, on session t, the value of the latest period whose
  release date is on or before t; `mom_pct` and `yoy_pct` compare that value
  with the previous calendar month's and the same month a year earlier;
- of a period's vintages (its first print and each revision, each with the day
  it became known, `realtime_start`), session t sees the latest known on t
  (ALFRED's real-time semantics). Where no vintage of a released period is
  known by t (history loaded after the fact: a value first seen on the day the
  bot fetched it, or a file that does not say), its first known vintage stands
  in, and the session is marked `revised`: its value is not the one the
  market saw that day. `revised` is what the "revised values" notes read.
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
    revised: np.ndarray | None = None  # bool: the session's value (or a month it is compared with) is a
    #                                    later vintage standing in for one not known that day


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
    """Point in time: a month's value exists from its release date on, each vintage from its realtime_start."""
    table = table.dropna(subset=["value"])
    if table.empty:  # nothing released yet as of this frame's end
        nothing = np.full(len(sessions), np.nan)
        return Monthly(nothing, nothing, nothing, np.zeros(len(sessions)),
                       np.full(len(sessions), np.datetime64("NaT"), dtype="datetime64[D]"),
                       np.zeros(len(sessions), dtype=bool))
    vintaged = "realtime_start" in table and table["realtime_start"].notna().any()
    if vintaged or not table.index.is_unique:
        return _vintages_on_sessions(table, sessions)
    months = table.index.to_period("M")
    by_month = pd.Series(table["value"].to_numpy(dtype=float), index=months)
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

    month = np.full(len(sessions), np.datetime64("NaT"), dtype="datetime64[D]")
    month[known] = table.index.to_numpy().astype("datetime64[D]")[pick[known]]
    # no row says when its value became known: each is a value of unknown vintage standing in
    return Monthly(spread(values), spread(mom), spread(yoy), _released(release_sorted, sessions), month,
                   known.copy())


def _released(releases: np.ndarray, sessions: pd.DatetimeIndex) -> np.ndarray:
    """1.0 on the first session on or after each release date."""
    released = np.zeros(len(sessions))
    first_sessions = np.searchsorted(sessions.to_numpy(), np.unique(releases), side="left")
    released[first_sessions[first_sessions < len(sessions)]] = 1.0
    return released


def _vintages_on_sessions(table: pd.DataFrame, sessions: pd.DatetimeIndex) -> Monthly:
    """The general case: several vintages per period, or rows that say when they became known.

    The state changes only on a release date or a realtime_start, so it is
    computed once per such event (a few hundred for CPI's whole history) and
    spread over the sessions with one searchsorted.
    """
    periods = table.index.to_numpy().astype("datetime64[D]")
    values = table["value"].to_numpy(dtype=float).tolist()
    starts = (table["realtime_start"] if "realtime_start" in table
              else pd.Series(pd.NaT, index=table.index)).to_numpy().astype("datetime64[D]")
    releases = table["release_date"].to_numpy().astype("datetime64[D]")
    never = np.iinfo(np.int64).max  # a vintage that does not say when it became known: known on no day
    # as day numbers and month numbers (Python ints: the loops below are per event, a few hundred)
    start_days = np.where(np.isnat(starts), never, starts.astype(np.int64)).tolist()
    release_days = np.where(np.isnat(releases), never, releases.astype(np.int64)).tolist()
    months = periods.astype("datetime64[M]").astype(np.int64).tolist()
    vintages: dict[int, tuple[list, list]] = {}  # month -> (realtime_starts, values), first known first
    release_of: dict[int, int] = {}
    for i in sorted(range(len(months)), key=lambda i: (months[i], -1 if start_days[i] == never else start_days[i])):
        month = months[i]
        known_starts, known_values = vintages.setdefault(month, ([], []))
        known_starts.append(start_days[i])
        known_values.append(values[i])
        release_of[month] = min(release_of.get(month, never), release_days[i])
    for month, (known_starts, _) in vintages.items():
        if release_of[month] == never:  # no release date: known from its first realtime_start, else its date
            known = [s for s in known_starts if s != never]
            release_of[month] = min(known) if known else \
                int(np.datetime64(month, "M").astype("datetime64[D]").astype(np.int64))
    by_release = sorted(vintages, key=lambda m: (release_of[m], m))
    release_sorted = np.array([release_of[m] for m in by_release], dtype=np.int64)
    events = np.unique(np.concatenate([release_sorted, [s for s in start_days if s != never]]).astype(np.int64))

    def value_on(month, day):
        """(value, standing in?) of `month` as known on `day`; (NaN, False) for a month not stored."""
        found = vintages.get(month)
        if found is None:
            return np.nan, False
        known_starts, known_values = found
        if len(known_starts) == 1:
            return known_values[0], known_starts[0] > day
        best = None
        for k, start in enumerate(known_starts):
            if start <= day:
                best = k
        if best is None:
            return known_values[0], True
        return known_values[best], False

    n = len(events)
    value, mom, yoy = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    month_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    revised = np.zeros(n, dtype=bool)
    latest = np.searchsorted(release_sorted, events, side="right") - 1
    for e, (day, pos) in enumerate(zip(events.tolist(), latest.tolist())):
        if pos < 0:
            continue
        month = by_release[pos]
        now, stand_in = value_on(month, day)
        prev, prev_stand_in = value_on(month - 1, day)
        year_ago, year_stand_in = value_on(month - 12, day)
        value[e] = now
        mom[e] = (now / prev - 1.0) * 100.0
        yoy[e] = (now / year_ago - 1.0) * 100.0
        month_at[e] = np.datetime64(month, "M").astype("datetime64[D]")
        revised[e] = stand_in or prev_stand_in or year_stand_in
    events = events.astype("datetime64[D]")
    release_sorted = release_sorted.astype("datetime64[D]").astype("datetime64[ns]")
    at = np.searchsorted(events, sessions.to_numpy().astype("datetime64[D]"), side="right") - 1
    known = at >= 0
    pick = np.clip(at, 0, None)

    def spread(column, empty):
        out = np.full(len(sessions), empty, dtype=column.dtype)
        out[known] = column[pick[known]]
        return out

    return Monthly(spread(value, np.nan), spread(mom, np.nan), spread(yoy, np.nan),
                   _released(release_sorted, sessions), spread(month_at, np.datetime64("NaT")),
                   spread(revised, False))


def build(observations: dict[str, pd.DataFrame], frequencies: dict[str, str], sessions: pd.DatetimeIndex) -> Frame:
    """A Frame over `sessions` from observations keyed by series name."""
    frame = Frame(sessions)
    for name, table in observations.items():
        if frequencies.get(name, "daily") == "monthly":
            frame.monthly[name] = monthly_on_sessions(table, sessions)
        else:
            frame.daily[name], frame.age[name] = daily_on_sessions(table["value"], sessions)
    return frame
