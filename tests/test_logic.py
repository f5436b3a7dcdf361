"""Three-valued (Kleene) logic: a missing input makes a comparison unknown, and unknown is settled by the
other side of `and`/`or` where it can be. A rule fires only where its condition is true."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.data import calendar, load
from bot.engine import frame as frames
from bot.engine.evaluate import evaluate
from bot.engine.frame import Frame
from bot.settings.load import load_series
from bot.settings.models import SeriesDef
from bot.settings.rules_file import loads_rules
from tests.conftest import ROOT

T, F, U = "true", "false", "unknown"
VALUE = {T: 1.0, F: -1.0, U: np.nan}  # `X > 0` is then true, false, or unknown (X missing)
HOLDS = {1.0: T, 0.0: F}
SERIES = {name: SeriesDef(name=name, source="csv") for name in ("A", "B", "C")}

AND = {(T, T): T, (T, F): F, (T, U): U,
       (F, T): F, (F, F): F, (F, U): F,
       (U, T): U, (U, F): F, (U, U): U}
OR = {(T, T): T, (T, F): T, (T, U): T,
      (F, T): T, (F, F): F, (F, U): U,
      (U, T): T, (U, F): U, (U, U): U}
NOT = {T: F, F: T, U: U}

# (how the condition is written, the inputs A, B[, C], the truth value it must have)
TABLE = (
    [("A > 0 and B > 0", (a, b), out) for (a, b), out in AND.items()]
    + [("A > 0 or B > 0", (a, b), out) for (a, b), out in OR.items()]
    + [("not (A > 0)", (a,), out) for a, out in NOT.items()]
    + [({"not": "A > 0"}, (a,), out) for a, out in NOT.items()]
    + [({"all": ["A > 0", "B > 0"]}, (a, b), out) for (a, b), out in AND.items()]
    + [({"any": ["A > 0", "B > 0"]}, (a, b), out) for (a, b), out in OR.items()]
    + [({"all": ["A > 0", "B > 0", "C > 0"]}, (T, U, F), F),
       ({"all": ["A > 0", "B > 0", "C > 0"]}, (T, U, T), U),
       ({"any": ["A > 0", "B > 0", "C > 0"]}, (F, U, T), T),
       ({"any": ["A > 0", "B > 0", "C > 0"]}, (F, U, F), U),
       ("A + B > 0", (T, U), U),  # arithmetic touching a missing value is missing
       ("A > 0 and not (B > 0)", (T, U), U),
       ("A > 0 or not (B > 0)", (F, U), U)]
)


def when_yaml(when, indent="    ") -> str:
    if isinstance(when, str):
        return f"{indent}when: \"{when}\"\n"
    (key, body), = when.items()
    if key == "not":
        return f"{indent}when:\n{indent}  not: \"{body}\"\n"
    return f"{indent}when:\n{indent}  {key}:\n" + "".join(f"{indent}    - \"{item}\"\n" for item in body)


def label(row):
    when, inputs, out = row
    return f"{when} | {', '.join(inputs)} -> {out}"


@pytest.mark.parametrize("when,inputs,expected", TABLE, ids=[label(r) for r in TABLE])
def test_each_operator_over_true_false_and_unknown(when, inputs, expected):
    rules = loads_rules(f"rules:\n  - id: r\n    cooldown: 0\n{when_yaml(when)}", SERIES)
    sessions = calendar.sessions("2024-07-01", "2024-07-03")
    frame = Frame(sessions)
    for name, truth in zip("ABC", inputs + (T,) * (3 - len(inputs))):
        frame.daily[name] = np.array([VALUE[truth]] * len(sessions))
        frame.age[name] = np.array([0 if truth != U else 10**9] * len(sessions))
    ev = evaluate(rules, frame)
    holds = ev.holds["r"][0]
    assert HOLDS.get(holds, U) == expected
    assert bool(ev.fires["r"][0]) == (expected == T)  # a rule fires only where its condition is true


def evaluate_on_history(rules, series_defs, data_dir):
    """Every rule over the whole real history in `data_dir` (the engine only: no store, no app)."""
    names = sorted({name for rule in rules for name in rule.needs})
    observations = load.observations(names, data_dir=str(data_dir))
    daily = [n for n in names if series_defs[n].frequency == "daily"]
    sessions = calendar.sessions(min(observations[n].index.min() for n in daily),
                                 max(observations[n].index.max() for n in daily))
    frame = frames.build(observations, {n: series_defs[n].frequency for n in names}, sessions)
    return evaluate(rules, frame)


@pytest.fixture(scope="module")
def early_years(data_dir):
    """IWM +2% days of 2000-2002, computed by hand from the CSV; RSP has no history before 2003-05-01."""
    iwm = pd.read_csv(data_dir / "IWM.csv", index_col="date", parse_dates=True)["value"]
    change = (iwm / iwm.shift(1) - 1) * 100
    window = change["2000-06-01":"2002-12-31"]
    text = """
rules:
  - id: either-up-2
    when: pct_change(IWM, 1) >= 2 or pct_change(RSP, 1) >= 2
    cooldown: 0
  - id: both-up-2
    when: pct_change(IWM, 1) >= 2 and pct_change(RSP, 1) >= 2
    cooldown: 0
"""
    series = load_series(ROOT / "config" / "series.yaml")
    return window, evaluate_on_history(loads_rules(text, series), series, data_dir)


def test_or_fires_on_an_iwm_rally_before_rsp_exists(early_years):
    window, ev = early_years
    up_days = window[window >= 2].index
    assert len(up_days) > 20  # 2000-2002 had many such days; the test must see them
    fired = ev.fire_dates("either-up-2", "2000-06-01", "2002-12-31")
    assert list(fired) == list(up_days)


def test_or_is_unknown_not_false_when_the_known_side_is_false_and_the_other_missing(early_years):
    window, ev = early_years
    down_day = window[window <= -1].index[0]
    assert np.isnan(ev.holds["either-up-2"][ev.frame.index_of(down_day)])


def test_and_is_false_when_the_known_side_is_false_even_with_the_other_missing(early_years):
    window, ev = early_years
    down_day = window[window <= -1].index[0]
    up_day = window[window >= 2].index[0]
    assert ev.holds["both-up-2"][ev.frame.index_of(down_day)] == 0.0
    assert np.isnan(ev.holds["both-up-2"][ev.frame.index_of(up_day)])  # true and unknown
    assert not ev.fires["both-up-2"][ev.frame.index_of(up_day)]
