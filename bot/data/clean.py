"""Keep what a source or a file says only when it looks like data: the one cleaning path.

Every way data enters goes through here: a network source (`fetch`), a CSV
directory (`fetch --data-dir`, `--data-dir` on check/backtest, `replay`, all
of which read files with `bot.data.sources.csv.read`). What is rejected, and
how it is worded, is decided in this module only:

- a missing value (`.` or empty): skipped (sources say "no value" that way; one
  summary line, not a warning per holiday);
- a value that is not a number (in a file): rejected;
- a date given twice with different values: **both rows are dropped**. Neither
  can be trusted over the other, and a dropped day is carried forward from the
  day before (a missing value the engine knows how to treat), whereas keeping
  the wrong one invents a move (IWM 2024-07-10 at 150.00 read as "+37.76%" the
  next day). The same value twice is kept once;
- a price or index value of zero or below (`units: price` / `index`);
- a date after today;
- a one-day spike past the series' `move_limit()` that reverses the next day
  (and a newest value past the limit, which is fetched again tomorrow);
- in a file, an unterminated last line that is shorter than the rows above it
  (see `cut_last_line`);
- in a file, a date or release date outside 1900-01-01..2199-12-31
  (`bot.settings.paths.EARLIEST_DATE`/`LATEST_DATE`; see `outside_dates`):
  pandas cannot hold it, and would otherwise wrap 1600-01-03 round to 2184;
- a value released before the period it describes (a CPI for June published
  in May): read as known before it existed, it would hide the real print;
- a value no market quotes: subnormal (1e-320) or beyond 1e15 (see
  `ABSURD_ABOVE`); arithmetic on it overflows.

Each rejected row is logged as a warning that names where it came from:
`path:line` for a file, `source date` for a source. A whole answer that
leaves nothing is the caller's SourceError.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from bot.settings.paths import EARLIEST_DATE, LATEST_DATE

log = logging.getLogger(__name__)

# frame.attrs keys: set by bot.data.sources.base.observations and csv.read, read here
ORIGIN = "origin"  # a source name or a file path
LINES = "lines"  # Noted(lines=Series of line numbers indexed by date) for rows read from a file
DUPLICATES = "duplicates"  # {Timestamp: [every value given for that date, in order]}


class Noted(dict):
    """A dict kept in `frame.attrs` by reference: pandas deep-copies attrs on every operation, and
    copying a line number per row each time costs seconds on a 16,000-row file."""

    def __deepcopy__(self, memo):
        return self


@dataclass(frozen=True)
class Rejection:
    """One row not kept, and why, worded for the person who can fix it."""

    where: str  # "data/IWM.csv:6120" or "nasdaq 2024-07-10"
    reason: str

    def __str__(self):
        return f"{self.where}: {self.reason}"


def where(frame: pd.DataFrame, day, origin: str | None = None) -> str:
    """`path:line` when the row came from a file, else `source YYYY-MM-DD`."""
    origin = frame.attrs.get(ORIGIN) or origin or "data"  # a file's path beats the source name "csv"
    day = pd.Timestamp(day)
    noted = (frame.attrs.get(LINES) or {}).get("lines")
    if noted is not None and day in noted.index:
        return " and ".join(f"{origin}:{n}" for n in noted.loc[[day]])
    return f"{origin} {day:%Y-%m-%d}"


def reject(rejections: list[Rejection]) -> None:
    for r in rejections:
        log.warning("%s", r)


# -- file-level checks (bot.data.sources.csv.read) ---------------------------------------------------

_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_value(text: str) -> float | None:
    """A file's value: a float, NaN for empty or '.', None for anything that is not a number."""
    text = text.strip()
    if text in ("", "."):
        return np.nan
    return float(text) if _NUMBER.match(text) else None


def _decimals(text: str) -> int:
    text = text.strip()
    return len(text) - text.index(".") - 1 if "." in text else 0


def cut_last_line(fields: list[str], above: list[list[str]], header: list[str]) -> str | None:
    """Why an unterminated last line looks cut off, or None if it looks whole.

    A file whose other lines all end in a newline and whose last line does not
    was most likely cut while being written or copied. The line is dropped when
    it is shorter than the rows above it: fewer fields than the header, a field
    the rows above always fill left empty, a date or value that does not parse,
    or fewer decimals than every one of the rows above (`2024-06-03,200` under
    rows like `2024-05-31,203.1200`), a date cut short (`2024-07-1`). A line as long as its neighbours is kept:
    it is indistinguishable from a whole one.
    """
    if len(fields) < len(header):
        return f"has {len(fields)} of the header's {len(header)} fields"
    recent = above[-20:]
    for i, name in enumerate(header):
        if not fields[i].strip() and recent and all(len(r) > i and r[i].strip() for r in recent):
            return f"leaves {name} empty where every row above fills it"
    for name in ("date", "release_date", "realtime_start"):
        if name in header and fields[header.index(name)].strip() and not _DATE.match(fields[header.index(name)]):
            return f"{name} {fields[header.index(name)]!r} is not a whole YYYY-MM-DD date"
    value = fields[header.index("value")]
    if parse_value(value) is None:
        return f"value {value!r} is not a number"
    if recent:
        places = {_decimals(r[header.index("value")]) for r in recent if len(r) > header.index("value")}
        if len(places) == 1 and _decimals(value) < places.pop():
            return f"value {value!r} has fewer decimals than the rows above"
    return None


def outside_dates(texts: pd.Series, name: str, origin, numbers) -> tuple[np.ndarray, list[Rejection]]:
    """(mask of rows to keep, rejections): rows whose `name` (date or release_date) is a well-formed
    YYYY-MM-DD outside EARLIEST_DATE..LATEST_DATE, each named with its own date and line. Text that is not
    such a date is kept here: the reader reports it as not a date."""
    well_formed = texts.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(dtype=bool)
    outside = well_formed & ((texts < EARLIEST_DATE.isoformat()) | (texts > LATEST_DATE.isoformat())) \
        .fillna(False).to_numpy(dtype=bool)
    rejections = [Rejection(f"{origin}:{numbers.iloc[i]}",
                            f"{name} {texts.iloc[i]} is outside {EARLIEST_DATE}..{LATEST_DATE}; dropped")
                  for i in np.flatnonzero(outside)]
    return ~outside, rejections


ABSURD_ABOVE = 1e15  # no price, index, yield or rate comes near a quadrillion; beyond it, overflow follows


# -- value-level checks: every frame, from a source or a file -----------------------------------------

def resolve_duplicates(frame: pd.DataFrame, origin: str | None = None) -> tuple[pd.DataFrame, list[Rejection]]:
    """Drop every date given twice with different values (see the module docstring)."""
    dups = frame.attrs.get(DUPLICATES) or {}
    rejections, conflicting = [], []
    for day, values in dups.items():
        distinct = sorted({v for v in values if not pd.isna(v)})
        if len(distinct) > 1:
            shown = " and ".join(f"{v:g}" for v in values)
            rejections.append(Rejection(where(frame, day, origin),
                                        f"{pd.Timestamp(day):%Y-%m-%d} given {len(values)} times ({shown}); "
                                        "dropped (neither value is trusted; fix the data)"))
            conflicting.append(pd.Timestamp(day))
        else:
            log.info("%s: %s given %d times with the same value; kept once", where(frame, day, origin),
                     f"{pd.Timestamp(day):%Y-%m-%d}", len(values))
    if conflicting:
        frame = frame[~frame.index.isin(conflicting)]
    frame = frame.copy()
    frame.attrs = {k: v for k, v in frame.attrs.items() if k != DUPLICATES}
    return frame, rejections


def clean(frame: pd.DataFrame, series=None, today: date | None = None, previous: float | None = None,
          origin: str | None = None):
    """Return (kept, reasons): the rows worth keeping, and one summary line per kind of row dropped.

    `series` (a SeriesDef) gives the units and move limit; without it only the
    checks that need no units run (duplicates, missing, future). `previous` is
    the last stored value before the frame starts, so a spike on the first new
    day is judged against what the store already holds. `today` None skips the
    future-date check. Each rejected row is also logged with where it came from.
    """
    name = getattr(series, "name", None) or origin or frame.attrs.get(ORIGIN) or "data"
    reasons: list[str] = []
    frame, rejected = resolve_duplicates(frame, origin)
    if rejected:
        reasons.append(f"{len(rejected)} date(s) given twice with different values dropped "
                       f"({', '.join(r.reason.split(' ', 1)[0] for r in rejected[:3])})")

    missing = frame["value"].isna()
    if missing.any():
        reasons.append(f"{int(missing.sum())} missing value(s) ('.' or empty) skipped")
        log.info("%s: %s", name, reasons[-1])
        frame = frame[~missing]

    if today is not None:
        future = frame.index > pd.Timestamp(today)
        if future.any():
            reasons.append(f"{int(future.sum())} row(s) dated after today ({today}) dropped")
            rejected += [Rejection(where(frame, d, origin), f"{d:%Y-%m-%d} is after today ({today}); dropped")
                         for d in frame.index[future]]
            frame = frame[~future]

    released = frame["release_date"] if "release_date" in frame.columns else None
    early = (released < frame.index).to_numpy(dtype=bool) if released is not None else np.zeros(len(frame), bool)
    if early.any():
        reasons.append(f"{int(early.sum())} value(s) released before their own period dropped")
        rejected += [Rejection(where(frame, d, origin), f"{d:%Y-%m-%d} released on {r:%Y-%m-%d}, before the "
                                                        "period it describes; dropped (fix its release_date)")
                     for d, r in released[early].items()]
        frame = frame[~early]

    size = np.abs(frame["value"].to_numpy(dtype=float))
    absurd = ((size > 0) & (size < np.finfo(float).tiny)) | (size > ABSURD_ABOVE)
    if absurd.any():
        reasons.append(f"{int(absurd.sum())} absurd value(s) dropped")
        rejected += [Rejection(where(frame, d, origin), f"{d:%Y-%m-%d} value {v:g} is no market's number "
                                                        f"(subnormal, or beyond {ABSURD_ABOVE:g}); dropped")
                     for d, v in frame["value"][absurd].items()]
        frame = frame[~absurd]

    units = getattr(series, "units", None)
    if units in ("price", "index"):
        bad = frame["value"] <= 0
        if bad.any():
            days = ", ".join(d.strftime("%Y-%m-%d") for d in frame.index[bad][:3])
            reasons.append(f"{int(bad.sum())} non-positive value(s) rejected ({days})")
            rejected += [Rejection(where(frame, d, origin), f"{d:%Y-%m-%d} value {v:g} is not positive "
                                                            f"({'an' if units == 'index' else 'a'} {units} must be > 0); dropped")
                         for d, v in frame["value"][bad].items()]
            frame = frame[~bad]

    if series is not None and series.frequency == "daily" and len(frame):
        limit = series.move_limit()
        spikes = _spikes(frame["value"].to_numpy(), units, limit, previous)
        if spikes.any():
            unit = "%" if units == "price" else " points"
            days = ", ".join(f"{d:%Y-%m-%d}={v:g}" for d, v in zip(frame.index[spikes][:3],
                                                                    frame["value"][spikes][:3]))
            reasons.append(f"{int(spikes.sum())} implausible jump(s) rejected ({days}; limit "
                           f"{limit:g}{unit} a day)")
            rejected += [Rejection(where(frame, d, origin), f"{d:%Y-%m-%d} value {v:g} jumps more than "
                                                            f"{limit:g}{unit} from its neighbours; dropped")
                         for d, v in frame["value"][spikes].items()]
            frame = frame[~spikes]
    reject(rejected)
    return frame, reasons


def _move(a, b, units):
    if units == "price":
        return (b / a - 1.0) * 100.0
    return b - a


def _spikes(values: np.ndarray, units: str, limit: float, previous: float | None) -> np.ndarray:
    """A value is a spike when it jumps past the limit from its neighbour and the next value jumps back.

    The newest value cannot be confirmed by a next one: it is rejected when it
    jumps past the limit, and fetched again (with the overlap) next time, when a
    genuine move will have a neighbour that confirms it.

    The neighbour a value is judged against is the last one kept, which is the
    value just before it until a spike is dropped. So the jumps between
    neighbours are computed as arrays first, and the exact walk (`_walk_spikes`)
    runs only from each jump past the limit until a value is kept again: a few
    steps per jump instead of a Python step per row.
    """
    out = np.zeros(len(values), dtype=bool)
    if not len(values):
        return out
    # a move from a tiny price overflows to inf, which is past any limit: the right answer, without a warning
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        jumps = np.abs(_move(values[:-1], values[1:], units)) > limit
        candidates = np.flatnonzero(jumps) + 1
        if previous is not None and abs(_move(previous, values[0], units)) > limit:
            candidates = np.concatenate(([0], candidates))
        resume = 0  # the first index whose neighbour is not known to be the last value kept
        for start in candidates:
            if start < resume:
                continue
            resume = _walk_spikes(values, units, limit, values[start - 1] if start else previous, start, out)
    return out


def _walk_spikes(values, units, limit, before, i, out) -> int:
    """The exact rule from index `i` on, `before` being the last value kept; returns the index after the first
    value kept (from there the last value kept is again the value just before)."""
    while i < len(values):
        value = values[i]
        if abs(_move(before, value, units)) > limit:
            after = values[i + 1] if i + 1 < len(values) else None
            if after is None or abs(_move(value, after, units)) > limit:
                out[i] = True
                i += 1
                continue
        return i + 1
    return i
