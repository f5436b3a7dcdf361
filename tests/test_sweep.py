"""`sweep`: one rule over many parameter values, each row equal to evaluating the rule with that value."""

from __future__ import annotations

import numpy as np
import pytest

from bot.app.evaluation import prepare
from bot.engine.evaluate import evaluate
from bot.engine.report import summarize
from bot.engine.rules import with_params
from bot.engine.sweep import SweepError, parse_grid, parse_values, sweep
from bot.settings.load import load_series
from bot.settings.rules_file import loads_rules
from tests.conftest import ROOT

RULES = """
rules:
  - id: small-cap-trap
    params: {rally: 4, rise: 0.20}
    when: pct_change(IWM, 5) >= rally and change(DGS10, 5) >= rise
    cooldown: 15
  - id: risk-off-pivot
    when: fired(small-cap-trap, 15) and drawdown(IWM, 10) <= -6 and change(DGS10, 5) < 0
    cooldown: 10
  - id: after-pivot
    when: fired(risk-off-pivot, 5) and pct_change(SPY, 1) >= 1
  - id: unrelated
    params: {drop: 4}
    when: pct_change(SPY, 1) <= -drop
    cooldown: 10
  - id: trend
    params: {days: 200}
    when: IWM > sma(IWM, days)
    for: 3
    cooldown: 20
"""


@pytest.fixture(scope="module")
def loaded(data_dir):
    series = load_series(ROOT / "config" / "series.yaml")
    rules = loads_rules(RULES, series)
    return rules, prepare(rules, series, data_dir=str(data_dir)).evaluation


def evaluated_with(rules, frame, rule_id, values):
    """The slow way: rebuild the rule with the values and evaluate every rule again."""
    return evaluate([with_params(r, values) if r.id == rule_id else r for r in rules], frame)


def test_each_value_fires_exactly_as_evaluating_the_rule_with_that_value(loaded):
    rules, ev = loaded
    values = [2, 3, 3.5, 4, 5, 6, 8]
    rows = sweep(rules, ev.frame, "small-cap-trap", {"rally": values}, evaluation=ev)
    assert [row.params for row in rows] == [{"rally": float(v), "rise": 0.2} for v in values]
    for row, value in zip(rows, values):
        alone = evaluated_with(rules, ev.frame, "small-cap-trap", {"rally": value})
        expected = [d.date() for d in alone.fire_dates("small-cap-trap")]
        assert (row.firings, row.dates) == (len(expected), expected), value
        assert row.dependents == {"risk-off-pivot": int(alone.fires["risk-off-pivot"].sum()),
                                  "after-pivot": int(alone.fires["after-pivot"].sum())}, value
    assert rows[0].firings > rows[-1].firings  # a lower bar fires more: the sweep says something


def test_a_grid_of_two_parameters_is_their_product_in_order(loaded):
    rules, ev = loaded
    rows = sweep(rules, ev.frame, "small-cap-trap", {"rally": [3, 5], "rise": [0, 0.3]}, evaluation=ev)
    assert [tuple(r.params.values()) for r in rows] == [(3, 0), (3, 0.3), (5, 0), (5, 0.3)]
    for row in rows:
        alone = evaluated_with(rules, ev.frame, "small-cap-trap", row.params)
        assert row.firings == int(alone.fires["small-cap-trap"].sum())


def test_a_window_parameter_moves_the_first_evaluable_session(loaded):
    rules, ev = loaded
    rows = sweep(rules, ev.frame, "trend", {"days": [50, 200]}, evaluation=ev)
    for row, days in zip(rows, (50, 200)):
        alone = evaluated_with(rules, ev.frame, "trend", {"days": days})
        assert row.firings == int(alone.fires["trend"].sum())
    assert rows[0].figures.span_from < rows[1].figures.span_from


def test_the_window_and_holdout_split_the_counts(loaded):
    rules, ev = loaded
    (row,) = sweep(rules, ev.frame, "unrelated", {"drop": [3]}, start="2000-01-01", end="2019-12-31",
                   holdout="2010-01-01", evaluation=ev)
    alone = evaluated_with(rules, ev.frame, "unrelated", {"drop": 3})
    assert row.dates == [d.date() for d in alone.fire_dates("unrelated", "2000-01-01", "2019-12-31")]
    assert row.before.firings + row.after.firings == row.firings
    assert all(d.year < 2010 for d in row.before.dates) and all(d.year >= 2010 for d in row.after.dates)
    assert (str(row.before.span_to), str(row.after.span_from)) == ("2009-12-31", "2010-01-04")


def test_forward_figures_equal_the_backtest_report_at_the_same_value(loaded):
    rules, ev = loaded
    (row,) = sweep(rules, ev.frame, "small-cap-trap", {"rally": [4]}, evaluation=ev)
    (report,) = summarize(ev, rules=[ev.rule("small-cap-trap")])
    assert (row.firings, row.per_year) == (report.firings, report.per_year)
    assert row.figures.forward == report.forward


def test_sweeping_leaves_the_evaluation_it_reused_unchanged(loaded):
    rules, ev = loaded
    before = {rid: f.copy() for rid, f in ev.fires.items()}
    keys = set(ev.context.memo)
    sweep(rules, ev.frame, "small-cap-trap", {"rally": [1, 9]}, evaluation=ev)
    assert all(np.array_equal(before[rid], ev.fires[rid]) for rid in before)
    assert set(ev.context.memo) == keys


def test_json_rows_carry_params_firings_and_dates(loaded):
    rules, ev = loaded
    (row,) = sweep(rules, ev.frame, "small-cap-trap", {"rise": [0.1]}, end="2010-12-31", evaluation=ev)
    body = row.to_json()
    assert body["params"] == {"rally": 4, "rise": 0.1}
    assert body["firings"] == len(body["dates"]) and all(d <= "2010-12-31" for d in body["dates"])
    assert set(body["forward"]) == {"5", "20"}


@pytest.mark.parametrize("grid, message", [
    ({"rallly": [1]}, "rule small-cap-trap has no parameter 'rallly' (its parameters: rally, rise)"),
    ({}, "name a parameter to sweep, e.g. rally=1,2,3"),
])
def test_mistakes_say_what_to_write(loaded, grid, message):
    rules, ev = loaded
    with pytest.raises(SweepError) as err:
        sweep(rules, ev.frame, "small-cap-trap", grid, evaluation=ev)
    assert str(err.value) == message


def test_an_unknown_rule_suggests_the_close_one(loaded):
    rules, ev = loaded
    with pytest.raises(SweepError, match="no rule with id 'small-cap-trp'; did you mean 'small-cap-trap'"):
        sweep(rules, ev.frame, "small-cap-trp", {"rally": [1]}, evaluation=ev)


def test_a_non_window_value_for_a_window_parameter_is_refused(loaded):
    rules, ev = loaded
    with pytest.raises(SweepError, match="days is a window of sma"):
        sweep(rules, ev.frame, "trend", {"days": [20.5]}, evaluation=ev)


@pytest.mark.parametrize("text, values", [
    ("4,5,6", [4, 5, 6]),
    ("2:3:0.5", [2, 2.5, 3]),
    ("0:0.3:0.1", [0, 0.1, 0.2, 0.3]),
    ("1:2:0.3", [1, 1.3, 1.6, 1.9]),
    ("-1, 1", [-1, 1]),
])
def test_values_are_lists_or_inclusive_ranges(text, values):
    assert parse_values(text) == pytest.approx(values)


@pytest.mark.parametrize("spec, message", [
    ("rally", "'rally': write NAME=V1,V2,... or NAME=START:STOP:STEP, e.g. rally=3:6:0.5"),
    ("rally=a,b", "rally: 'a,b' is not a list of numbers; write rally=4,5,6 or rally=2:6:0.5"),
    ("rally=6:2:1", "rally: a range needs STOP >= START and a positive STEP, e.g. 2:6:0.5; got '6:2:1'"),
    ("rally=1:2", "rally: a range is START:STOP:STEP, e.g. 2:6:0.5; got '1:2'"),
])
def test_bad_value_specs_say_what_to_write(spec, message):
    with pytest.raises(SweepError) as err:
        parse_grid([spec])
    assert str(err.value) == message
