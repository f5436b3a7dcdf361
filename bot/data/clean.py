"""Keep what a source says only when it looks like data.

A missing value, a price of zero, a date in the future or a one-day spike that
reverses the next day is dropped with a logged reason, never stored. A whole
answer that leaves nothing is the caller's SourceError.
"""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def clean(frame: pd.DataFrame, series, today: date, previous: float | None = None):
    """Return (kept, reasons) where reasons lists what was dropped and why.

    `previous` is the last stored value before the frame starts, so a spike on
    the first new day is judged against what the store already holds.
    """
    reasons: list[str] = []
    frame = frame.copy()

    missing = frame["value"].isna()
    if missing.any():
        reasons.append(f"{int(missing.sum())} missing value(s) ('.' or empty) skipped")
        frame = frame[~missing]

    future = frame.index > pd.Timestamp(today)
    if future.any():
        reasons.append(f"{int(future.sum())} row(s) dated after today ({today}) dropped")
        frame = frame[~future]

    if series.units in ("price", "index"):
        bad = frame["value"] <= 0
        if bad.any():
            days = ", ".join(d.strftime("%Y-%m-%d") for d in frame.index[bad][:3])
            reasons.append(f"{int(bad.sum())} non-positive value(s) rejected ({days})")
            frame = frame[~bad]

    if series.frequency == "daily" and len(frame):
        spikes = _spikes(frame["value"].to_numpy(), series.units, series.move_limit(), previous)
        if spikes.any():
            days = ", ".join(f"{d:%Y-%m-%d}={v:g}" for d, v in zip(frame.index[spikes][:3],
                                                                    frame["value"][spikes][:3]))
            reasons.append(f"{int(spikes.sum())} implausible jump(s) rejected ({days}; limit "
                           f"{series.move_limit():g}{'%' if series.units == 'price' else ' points'} a day)")
            frame = frame[~spikes]
    for reason in reasons:
        log.warning("%s: %s", series.name, reason)
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
    """
    out = np.zeros(len(values), dtype=bool)
    before = previous
    for i, value in enumerate(values):
        if before is not None and abs(_move(before, value, units)) > limit:
            after = values[i + 1] if i + 1 < len(values) else None
            if after is None or abs(_move(value, after, units)) > limit:
                out[i] = True
                continue
        before = value
    return out
