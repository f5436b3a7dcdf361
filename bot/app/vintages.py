"""Say which figures stand on revised values: the notes `backtest`, `explain` and `sweep` print once.

A monthly value is revised rather than as first known on a session when no
vintage of it known that day is stored (history loaded after the fact: FRED's
current vintage, a `--data-dir` file without `realtime_start`, a store filled
before vintages were kept), so the frame lets a later vintage stand in
(bot.engine.frame). A rule near its threshold can then fire in a backtest and
not live, or the other way; the note names the series and from when on the
values are the ones known on the day.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd


def revised_notes(frame, names, start: date | None = None, end: date | None = None) -> list[str]:
    """One line per monthly series in `names` whose values in [start, end] are revised rather than as first
    known: "CPIAUCSL: revised values before 2026-12-01; first prints after" (or "... throughout")."""
    sessions = frame.sessions
    lo = 0 if start is None else int(sessions.searchsorted(pd.Timestamp(start), side="left"))
    hi = len(sessions) if end is None else int(sessions.searchsorted(pd.Timestamp(end), side="right"))
    notes = []
    for name in dict.fromkeys(names):
        monthly = frame.monthly.get(name)
        if monthly is None or monthly.revised is None or lo >= hi:
            continue
        revised = np.flatnonzero(monthly.revised[lo:hi])
        if not len(revised):
            continue
        last = lo + int(revised[-1])
        after = np.flatnonzero(~monthly.revised[last:])  # the first session known as it was on the day
        if len(after):
            notes.append(f"{name}: revised values before {sessions[last + int(after[0])].date()}; "
                         "first prints after")
        else:
            notes.append(f"{name}: revised values throughout (no first print known; FRED_API_KEY or a "
                         "realtime_start column gives them)")
    return notes
