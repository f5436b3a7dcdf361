"""Load what the engine needs and evaluate: the shell around the pure engine.

Every verb of the application core that reads an evaluation (check, backtest,
explain, sweep, test-rules, the session job, replay) comes through `prepare`,
so the answer for a day is the same whichever way it is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from bot.data import calendar, load
from bot.engine import frame as frames
from bot.engine.evaluate import Evaluation, evaluate
from bot.engine.rules import Rule
from bot.errors import DataError


def series_needed(rules: list[Rule]) -> list[str]:
    names: list[str] = []
    for rule in rules:
        for name in rule.needs:
            if name not in names:
                names.append(name)
    return names


@dataclass
class Prepared:
    evaluation: Evaluation
    observations: dict[str, pd.DataFrame]

    @property
    def frame(self):
        return self.evaluation.frame


def prepare(rules: list[Rule], series_defs, store=None, data_dir: str | None = None,
            as_of: date | None = None, today: date | None = None) -> Prepared:
    """Evaluate `rules` over every session up to `as_of` with only what was public by then. Files from
    `data_dir` go through the same cleaning as fetched data (`today` bounds future dates)."""
    names = series_needed(rules)
    observations = load.observations(names, store=store, data_dir=data_dir, as_of=as_of, series_defs=series_defs,
                                     today=today)
    daily = [n for n in names if series_defs[n].frequency == "daily"]
    firsts = [observations[n].index.min() for n in daily if len(observations[n])]
    lasts = [observations[n].index.max() for n in daily if len(observations[n])]
    if not firsts:
        raise DataError(f"no daily data for {', '.join(daily) or 'any series'}"
                        + (f" on or before {as_of}" if as_of else ""))
    end = pd.Timestamp(as_of) if as_of else max(lasts)
    sessions = calendar.sessions(min(firsts), end)
    frequencies = {n: series_defs[n].frequency for n in names}
    frame = frames.build(observations, frequencies, sessions)
    return Prepared(evaluate(rules, frame), observations)


def latest_session_with_data(prepared: Prepared, rules: list[Rule]) -> pd.Timestamp:
    """The newest session on which any daily series the rules read has a real (not carried) value."""
    frame = prepared.frame
    best = None
    for name in series_needed(rules):
        if name in frame.age:
            real = (frame.age[name] == 0).nonzero()[0]
            if len(real):
                best = max(best, real[-1]) if best is not None else real[-1]
    if best is None:
        raise DataError("no session has data for the rules' series")
    return frame.sessions[best]
