"""The backtest report on real history: span, rate, forward returns beside the baseline, hit rate, warnings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bot.app.evaluation import prepare
from bot.engine.report import summarize
from bot.engine.returns import rounded, rounded_json
from bot.engine.warnings import never_fired_warnings, never_reached_warnings
from bot.settings.load import load_series
from bot.settings.rules_file import loads_rules
from tests.conftest import ROOT


def forward_return(frame, series: str, i: int, sessions: int) -> float:
    """The oracle: % change of `series` from session i to i + sessions, one session at a time, NaN past the
    data. The engine computes every session at once (bot/engine/returns.py); this is the definition it must
    agree with."""
    values = frame.series(series)
    j = i + sessions
    if j >= len(values) or np.isnan(values[i]) or np.isnan(values[j]):
        return float("nan")
    return float((values[j] / values[i] - 1.0) * 100.0)

RULES = """
rules:
  - id: small-cap-trap
    when: pct_change(IWM, 5) >= 4 and change(DGS10, 5) >= 0.20
    cooldown: 15
  - id: breadth
    when: pct_change(RSP, 21) - pct_change(SPY, 21) >= 3
    cooldown: 21
    severity: info
    benchmark: SPY
  - id: either-jumps
    when: pct_change(IWM, 1) >= 2 or pct_change(RSP, 1) >= 2
    cooldown: 0
    severity: info
  - id: spy-crash
    when: pct_change(SPY, 1) <= -4
    cooldown: 10
    direction: up
  - id: bp-as-points
    when: change(DGS10, 5) >= 10
  - id: iwm-doubles
    when: pct_change(IWM, 1) >= 50 and change(DGS10, 1) > -5
"""


@pytest.fixture(scope="module")
def ev(data_dir):
    series = load_series(ROOT / "config" / "series.yaml")
    return prepare(loads_rules(RULES, series), series, data_dir=str(data_dir)).evaluation


@pytest.fixture(scope="module")
def reports(ev):
    return {r.rule: r for r in summarize(ev)}


def test_a_rule_is_evaluable_from_when_all_its_series_and_windows_exist(reports):
    # IWM starts 2000-05-26; a 5-session change needs 5 more sessions (Memorial Day 2000-05-29 closed)
    assert str(reports["small-cap-trap"].evaluable_from) == "2000-06-05"
    # RSP starts 2003-05-01; a 21-session change is first known 21 sessions later
    assert str(reports["breadth"].evaluable_from) == "2003-06-02"
    assert str(reports["breadth"].span_from) == "2003-06-02"


def test_the_rate_is_firings_per_252_sessions_of_the_evaluable_span(ev, reports):
    r = reports["small-cap-trap"]
    assert r.firings == int(ev.fires["small-cap-trap"].sum()) == len(r.dates)
    sessions = ev.frame.index_of(r.span_to) - ev.frame.index_of(r.span_from) + 1
    assert r.sessions == sessions
    assert r.per_year == pytest.approx(r.firings / (sessions / 252), abs=1e-4)


def test_or_fires_before_its_second_series_exists_and_the_span_starts_there(reports):
    r = reports["either-jumps"]
    assert str(r.evaluable_from) == "2003-05-02"  # RSP's first 1-session change
    assert r.dates[0] < r.evaluable_from and r.span_from == r.dates[0]


def test_forward_returns_match_the_per_firing_computation(ev, reports):
    r = reports["small-cap-trap"]
    for h in (5, 20):
        one_by_one = [forward_return(ev.frame, "IWM", int(i), h) for i in r.indices]
        known = [v for v in one_by_one if not math.isnan(v)]
        assert r.forward[h].known == len(known)
        assert r.forward[h].mean == pytest.approx(np.mean(known), abs=1e-4)
        assert r.forward[h].positive == pytest.approx(np.mean([v > 0 for v in known]), abs=1e-4)
        assert r.forward[h].hit_rate == pytest.approx(np.mean([v < 0 for v in known]), abs=1e-4)  # down


def test_the_baseline_is_the_mean_over_every_session_of_the_same_span(ev, reports):
    r = reports["breadth"]  # benchmark SPY, span from 2003-06-02
    lo, hi = ev.frame.index_of(r.span_from), ev.frame.index_of(r.span_to)
    every = [forward_return(ev.frame, "SPY", i, 20) for i in range(lo, hi + 1)]
    assert r.forward[20].baseline == pytest.approx(np.nanmean(every), abs=1e-4)
    assert r.forward[20].baseline_hit_rate == pytest.approx(  # an info rule predicts up
        np.mean([v > 0 for v in every if not math.isnan(v)]), abs=1e-4)


def test_direction_defaults_by_severity_and_can_be_declared(reports):
    assert reports["small-cap-trap"].direction == "down"
    assert reports["breadth"].direction == "up"
    assert reports["spy-crash"].direction == "up"


def test_the_window_limits_what_is_counted_not_what_is_computed(ev):
    (r,) = summarize(ev, "2008-01-01", "2009-12-31", rules=[ev.rule("spy-crash")])
    all_dates = [d.isoformat() for d in ev.fire_dates("spy-crash", "2008-01-01", "2009-12-31").date]
    assert [d.isoformat() for d in r.dates] == all_dates
    assert (str(r.span_from), str(r.span_to)) == ("2008-01-02", "2009-12-31")


def test_messages_are_rendered_only_for_the_firings_asked_for(ev, reports):
    r = reports["spy-crash"]
    (last,) = r.firing_details(slice(-1, None))
    i = int(r.indices[-1])
    assert (last.date, last.message) == (r.dates[-1], ev.message(ev.rule("spy-crash"), i))
    assert last.forward[5] == pytest.approx(forward_return(ev.frame, "SPY", i, 5), abs=1e-4)
    assert [f.date for f in r.firing_details([0, 2])] == [r.dates[0], r.dates[2]]


def test_json_is_plain_data(reports):
    body = reports["small-cap-trap"].to_json()
    assert body["evaluable_from"] == "2000-06-05" and body["firings"] == len(body["dates"])
    assert set(body["forward"]["20"]) == {"known", "mean", "positive", "hit_rate", "baseline", "baseline_hit_rate",
                                          "p_value", "mean_interval", "hit_rate_interval", "verdict"}
    json.dumps(body)  # plain data: the intervals are lists, not tuples of numpy floats


def test_never_fired_names_the_rule_and_its_span(ev):
    found = {w.rule: w.message for w in never_fired_warnings(ev)}
    assert set(found) == {"bp-as-points", "iwm-doubles"}
    assert found["bp-as-points"] == ("bp-as-points never fired over 1962-01-09..2026-06-12 "
                                     "(its condition held on 0 sessions)")


def test_never_reached_gives_the_range_the_left_side_covered(ev):
    found = [(w.rule, w.message) for w in never_reached_warnings(ev)]
    assert found == [
        ("bp-as-points", "never reached: change(DGS10, 5) ranged -1.35..1.36 since 1962, never >= 10 (bp-as-points)"),
        ("iwm-doubles", "never reached: pct_change(IWM, 1) ranged -13.27..9.15 since 2000, never >= 50 (iwm-doubles)"),
    ]


# -- the JSON numbers, made as arrays, are Python's round() and json.dumps character for character ----------

def _awkward_values() -> np.ndarray:
    """Values where array rounding can part from round(): exact and near halves at the 4th place (one ulp
    either side), NaN, infinities, signed zeros, tiny and huge numbers, and ordinary forward returns."""
    rng = np.random.default_rng(10)
    halves = (rng.integers(-10**9, 10**9, 20_000) + 0.5) / 1e4
    ordinary = rng.standard_normal(20_000) * 5
    ordinary[::17] = np.nan
    odd = [np.nan, np.inf, -np.inf, 0.0, -0.0, -0.00004, 0.00005, -0.00005, 2.675, 0.03125, 1e-7, 1e9,
           999999999.99995, -999999999.9999, 1e20, -3.5e300, 123456.0, 0.1 + 0.2]
    return np.concatenate([halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf), ordinary, odd])


def test_rounded_gives_the_floats_round_gives_and_none_for_nan():
    values = _awkward_values()
    expected = [None if v != v else round(float(v), 4) for v in values]
    assert list(map(repr, rounded(values, 4))) == list(map(repr, expected))
    rows = rounded(values[-18:].reshape(2, 9), 4)  # a rule's horizons in one call: one list per row
    assert [list(map(repr, row)) for row in rows] == [list(map(repr, expected[-18:-9])),
                                                      list(map(repr, expected[-9:]))]


@pytest.mark.parametrize("digits", [4, 2, 0])
def test_rounded_json_writes_what_json_dumps_writes_for_each_segment(digits):
    values = _awkward_values()
    ends = [0, 5, 5, 1000, 30_000, len(values)]  # an empty segment first, one in the middle
    expected, begin = [], 0
    for end in ends:
        expected.append(json.dumps([None if v != v else round(float(v), digits) for v in values[begin:end]],
                                   separators=(",", ":")))
        begin = end
    assert rounded_json(values, ends, digits) == expected
