"""`explain`: why a rule did or did not fire on a real day, with every sub-condition's values."""

from __future__ import annotations

import json

import pytest

from bot.app.evaluation import prepare
from bot.engine import expr as E
from bot.engine.explain import closest_session, explain, unparse
from bot.engine.lifecycle import held_but_quiet
from bot.render.explain import explain_lines
from bot.settings.load import load_series
from bot.settings.rules_file import loads_rules
from tests.conftest import ROOT
from tests.test_lifecycle import run

RULES = """
rules:
  - id: small-cap-trap
    when: pct_change(IWM, 5) >= 4 and change(DGS10, 5) >= 0.20
    cooldown: 15
  - id: trap-with-params
    params: {rally: 4, rise: 0.20}
    when: pct_change(IWM, 5) >= rally and change(DGS10, 5) >= rise
    cooldown: 15
  - id: soft-cpi
    when:
      all:
        - released(CPIAUCSL)
        - mom_pct(CPIAUCSL) <= 0.1
        - pct_change(IWM, 1) - pct_change(SPY, 1) >= 2
    cooldown: 0
  - id: pivot
    when: fired(small-cap-trap, 15) and drawdown(IWM, 10) <= -6 and change(DGS10, 5) < 0
    cooldown: 10
  - id: spy-crash
    when: pct_change(SPY, 1) <= -4
    cooldown: 10
  - id: above-trend
    when: IWM > sma(IWM, 200)
    for: 3
    cooldown: 0
  - id: either-jumps
    when: pct_change(IWM, 1) >= 2 or pct_change(RSP, 1) >= 2
    cooldown: 0
  - id: breadth
    when: pct_change(RSP, 21) - pct_change(SPY, 21) >= 3
  - id: mix
    when:
      any:
        - not: pct_change(IWM, 5) > -10
        - all:
            - pct_change(SPY, 1) >= 2
            - change(DGS10, 1) < 0
  - id: stress
    when: drawdown(SPY, 20) <= -10
    resolve: true
    cooldown: 0
"""


@pytest.fixture(scope="module")
def ev(data_dir):
    series = load_series(ROOT / "config" / "series.yaml")
    rules = loads_rules(RULES, series)
    return prepare(rules, series, data_dir=str(data_dir)).evaluation


def at(ev, rule, day):
    return explain(ev, rule, ev.frame.index_of(day))


def test_the_seed_day_shows_iwm_up_11_52_and_the_10y_down_13_bp(ev):
    x = at(ev, "small-cap-trap", "2024-07-16")
    assert (x.verdict, x.fired, x.condition.holds) == ("false", False, False)
    rally, rise = x.condition.children
    assert (rally.expr, rally.holds, round(rally.value, 2), rally.threshold) == \
        ("pct_change(IWM, 5) >= 4", True, 11.52, 4)
    assert (rise.expr, rise.holds, round(rise.value, 2), rise.threshold, rise.margin) == \
        ("change(DGS10, 5) >= 0.20", False, -0.13, 0.2, -0.33)


# On 2024-07-16 pct_change(IWM, 5) is 11.52: each operator against 4 and 20. The margin means one thing for
# every operator: positive = to spare, negative = short.
MARGINS = [
    # (comparison, holds, margin)
    ("pct_change(IWM, 5) >= 4", True, 7.52),
    ("pct_change(IWM, 5) > 4", True, 7.52),
    ("pct_change(IWM, 5) >= 20", False, -8.48),
    ("pct_change(IWM, 5) <= 20", True, 8.48),
    ("pct_change(IWM, 5) < 20", True, 8.48),
    ("pct_change(IWM, 5) <= 4", False, -7.52),
    ("pct_change(IWM, 5) < 4", False, -7.52),
    ("pct_change(IWM, 5) == 4", False, -7.52),
    ("pct_change(IWM, 5) != 4", True, 7.52),
    ("4 <= pct_change(IWM, 5)", True, 7.52),
    ("20 >= pct_change(IWM, 5)", True, 8.48),
]


@pytest.mark.parametrize("comparison,holds,margin", MARGINS, ids=[row[0] for row in MARGINS])
def test_margin_is_positive_to_spare_and_negative_short_for_every_operator(data_dir, comparison, holds, margin):
    series = load_series(ROOT / "config" / "series.yaml")
    rules = loads_rules(f"rules:\n  - id: r\n    when: {comparison}\n", series)
    evaluation = prepare(rules, series, data_dir=str(data_dir)).evaluation
    node = explain(evaluation, "r", evaluation.frame.index_of("2024-07-16")).condition
    assert (node.holds, round(node.margin, 2)) == (holds, margin)
    assert node.to_json()["margin"] == node.margin


def test_json_has_the_shape_of_the_issue(ev):
    body = json.loads(json.dumps(at(ev, "small-cap-trap", "2024-07-16").to_json()))
    assert {k: body[k] for k in ("rule", "date", "fired", "verdict")} == \
        {"rule": "small-cap-trap", "date": "2024-07-16", "fired": False, "verdict": "false"}
    condition = body["condition"]
    assert condition["expr"] == "pct_change(IWM, 5) >= 4 and change(DGS10, 5) >= 0.20"
    assert condition["holds"] is False and "value" not in condition
    assert [(c["expr"], c["holds"], c["threshold"], c["children"]) for c in condition["children"]] == [
        ("pct_change(IWM, 5) >= 4", True, 4, []), ("change(DGS10, 5) >= 0.20", False, 0.2, [])]
    assert [round(c["value"], 2) for c in condition["children"]] == [11.52, -0.13]


def test_the_text_form_gives_value_and_the_move_still_needed(ev):
    lines = explain_lines(at(ev, "small-cap-trap", "2024-07-16"))
    assert lines[0] == "small-cap-trap did not hold on 2024-07-16"
    row = next(line for line in lines if line.strip().startswith("change(DGS10, 5) >= 0.20"))
    assert row.split()[-5:] == ["-0.13", "needs", "+0.33", "more", "false"]


def test_parameters_are_shown_by_name_with_their_value_as_threshold(ev):
    rally, rise = at(ev, "trap-with-params", "2024-07-16").condition.children
    assert (rally.expr, rally.threshold, rise.expr, rise.threshold) == \
        ("pct_change(IWM, 5) >= rally", 4, "change(DGS10, 5) >= rise", 0.2)


def test_all_of_three_shows_three_children_as_written(ev):
    x = at(ev, "soft-cpi", "2024-07-11")
    assert x.verdict == "fired"
    assert [c.expr for c in x.condition.children] == [
        "released(CPIAUCSL)", "mom_pct(CPIAUCSL) <= 0.1", "pct_change(IWM, 1) - pct_change(SPY, 1) >= 2"]
    assert [c.holds for c in x.condition.children] == [True, True, True]
    assert x.condition.children[2].value == pytest.approx(3.59 + 0.86, abs=0.01)


def test_any_and_not_read_as_one_expression_with_only_the_parentheses_that_help(ev):
    x = at(ev, "mix", "2008-10-13")
    assert x.condition.expr == \
        "not (pct_change(IWM, 5) > -10) or (pct_change(SPY, 1) >= 2 and change(DGS10, 1) < 0)"
    negated, both = x.condition.children
    assert [(c.expr, c.holds) for c in (negated, *negated.children, both, *both.children)] == [
        ("not (pct_change(IWM, 5) > -10)", False), ("pct_change(IWM, 5) > -10", True),
        ("pct_change(SPY, 1) >= 2 and change(DGS10, 1) < 0", False), ("pct_change(SPY, 1) >= 2", True),
        ("change(DGS10, 1) < 0", False)]
    assert explain_lines(x)[-2].split()[-5:] == ["0.00", "at", "the", "threshold", "false"]  # `<` needs a move past 0


def test_a_missing_series_makes_it_unknown_and_is_named_with_its_first_day(ev):
    x = at(ev, "breadth", "2001-01-03")
    assert (x.verdict, x.condition.holds) == ("unknown", None)
    assert [(m.series, m.first_data.isoformat(), m.last_value) for m in x.missing] == [("RSP", "2003-05-01", None)]
    assert "RSP has no data before 2003-05-01" in explain_lines(x)[0]


def test_or_fires_when_one_side_is_true_and_the_other_unknown(ev):
    x = at(ev, "either-jumps", "2000-05-30")
    iwm, rsp = x.condition.children
    assert (x.verdict, iwm.holds, rsp.holds) == ("fired", True, None)
    assert [m.series for m in rsp.missing] == ["RSP"]
    assert x.missing == []  # the rule is not unknown: nothing made it so


def test_held_in_cooldown_names_the_firing_it_counts_from(ev):
    x = at(ev, "spy-crash", "2008-10-07")
    assert (x.verdict, str(x.since)) == ("cooldown", "2008-10-06")


def test_held_but_for_not_met_says_k_of_n(ev):
    assert at(ev, "above-trend", "2001-04-30").progress == (1, 3)
    x = at(ev, "above-trend", "2001-05-01")
    assert (x.verdict, x.progress) == ("pending_for", (2, 3))
    assert at(ev, "above-trend", "2001-05-02").verdict == "fired"


def test_a_resolving_rule_still_active_says_since_when(ev):
    x = at(ev, "stress", "1998-09-04")
    assert (x.verdict, str(x.since)) == ("active", "1998-09-03")


def test_fired_reference_notes_when_the_other_rule_fired_and_neighbours_are_given(ev):
    x = at(ev, "pivot", "2008-09-29")
    assert x.verdict == "fired"
    assert x.condition.children[0].note == "small-cap-trap last fired 2008-09-22, 5 sessions before (within 15)"
    assert (str(x.last_fired_before), str(x.next_fired_after)) == ("2001-07-10", "2008-11-06")


@pytest.mark.parametrize("text, expected", [
    ("(a + b) * c >= 1", "(a + b) * c >= 1"),
    ("a - (b - c) > 0", "a - (b - c) > 0"),
    ("not (x > 1 and y < 2) or z == 3", "not (x > 1 and y < 2) or z == 3"),
    ("-pct_change(IWM, 5) <= -6", "-pct_change(IWM, 5) <= -6"),
    ("((a > 1))", "a > 1"),
])
def test_unparse_writes_only_the_parentheses_needed(text, expected):
    tree = E.parse(text)
    assert unparse(tree) == expected
    assert E.parse(unparse(tree)).key() == tree.key()


def test_closest_session_prefers_the_day_most_conditions_held(ev):
    lo, hi = ev.frame.index_of("2024-07-08"), ev.frame.index_of("2024-07-19")
    best = ev.frame.sessions[closest_session(ev, "small-cap-trap", lo, hi)]
    x = at(ev, "small-cap-trap", best)
    assert x.condition.children[0].holds is True  # the rally leg held that day
    assert lo <= ev.frame.index_of(best) <= hi


@pytest.mark.parametrize("values, fields, i, verdict", [
    # a latched rule whose `for` run broke and restarted: still active, which is why it is quiet
    ([1, 1, -1, 1], {"for": 2, "resolve": "true", "clear_for": 3}, 3, ("active", 1, None)),
    ([1, 1, -1, 1], {"for": 2, "cooldown": 0}, 3, ("pending_for", None, (1, 2))),
    ([1, 1, 1], {"cooldown": 5}, 1, ("cooldown", 0, None)),
])
def test_explain_says_why_a_rule_that_holds_is_quiet_as_check_does(values, fields, i, verdict):
    """One answer to "it holds, why no alert?" (bot.engine.lifecycle.held_but_quiet), whichever asks."""
    ev = run(values, when="A > 0", **fields)
    rule = ev.rule("r")
    got = explain(ev, rule, i)
    sessions = ev.frame.sessions
    kind, since, progress = verdict
    assert (got.verdict, got.since, got.progress) == (kind, since if since is None else sessions[since].date(),
                                                      progress)
    why = held_but_quiet(ev.holds["r"], ev.fires["r"], ev.active["r"], i, rule.for_sessions, rule.cooldown)
    assert why[0] == {"pending_for": "for"}.get(kind, kind)
