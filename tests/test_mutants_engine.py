"""The firing lifecycle and the evaluation's date masks, where `make mutate` found changes no test noticed.

Each test here failed on a surviving mutant (README, "Tests").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.engine.lifecycle import fire, fire_and_resolve
from tests.test_lifecycle import at, run

T, F = 1.0, 0.0


@pytest.mark.parametrize("arrays", [
    lambda: (fire(np.array([T, F, T]), 1, 0),),
    lambda: fire_and_resolve(np.array([T, F, T]), np.array([F, T, F]), 1, 0, 1),
    lambda: fire_and_resolve(np.array([F, F, F]), np.array([F, F, F]), 1, 0, 1),  # nothing ever fires
])
def test_fires_resolves_and_active_are_boolean_masks(arrays):
    """They index the sessions (`frame.sessions[mask]`): a float array of 0.0 and 1.0 would not."""
    assert [a.dtype for a in arrays()] == [np.dtype(bool)] * len(arrays())


@pytest.mark.parametrize("resolve", [False, True])
def test_every_evaluated_array_is_a_boolean_mask(resolve):
    fields = {"when": "A > 0", "resolve": "true"} if resolve else {"when": "A > 0"}
    ev = run([1.0, -1.0, 1.0], **fields)
    assert [m["r"].dtype for m in (ev.fires, ev.resolves, ev.active)] == [np.dtype(bool)] * 3


@pytest.mark.parametrize("when, fires", [
    ("-A > 0", [1, 3]),  # unary minus negates
    ("2 <= -A", [3]),
    ("not A > 0", [1, 3]),
])
def test_unary_minus_negates_a_value_and_not_negates_a_condition(when, fires):
    ev = run([1.0, -1.0, 3.0, -2.0], when=when, cooldown=0)
    assert at(ev.fires["r"]) == fires


@pytest.mark.parametrize("resolve", [False, True])
def test_a_long_cooldown_never_stops_the_first_session_firing(resolve):
    """No firing before the first session: any cooldown, however long, lets the first candidate fire."""
    fields = {"when": "A > 0", "cooldown": 200}
    if resolve:
        fields["resolve"] = "true"
    ev = run([1.0, 1.0, -1.0, 1.0], **fields)
    assert at(ev.fires["r"]) == [0]


def test_fire_dates_include_both_ends_of_the_window():
    ev = run([1.0, -1.0, 1.0, -1.0, 1.0], when="A > 0", cooldown=0)
    sessions = ev.frame.sessions
    assert list(ev.fire_dates("r", sessions[0], sessions[4])) == [sessions[0], sessions[2], sessions[4]]
    assert list(ev.fire_dates("r", sessions[1], sessions[3])) == [sessions[2]]
    assert list(ev.fire_dates("r", end=pd.Timestamp(sessions[2]))) == [sessions[0], sessions[2]]


# held_but_quiet: why a rule whose condition holds sends nothing (`check` prints it; tests/test_check_not_sent.py
# runs the CLI, which mutmut cannot see). Arrays over 6 sessions at most; H: holds, N: not known.
H, N = 1.0, np.nan
QUIET = [
    # (holds, fires, active, i, for, cooldown, why)
    ([H, H, H], [1, 0, 1], [0, 0, 0], 2, 1, 5, None),  # it fires on i: nothing to explain
    ([H, F], [1, 0], [0, 0], 1, 1, 5, None),  # the condition does not hold on i
    ([H, N], [1, 0], [0, 0], 1, 1, 5, None),  # nor when it is unknown
    ([H] * 6, [1, 0, 1, 0, 1, 0], [1] * 6, 5, 1, 0, ("active", 4)),  # the last firing, not the first
    ([F, H], [0, 0], [0, 0], 1, 2, 0, ("for", 1)),
    ([F, H, H, H], [0] * 4, [0] * 4, 3, 5, 0, ("for", 3)),  # the run stops at the session that did not hold
    ([H, H], [0, 0], [0, 0], 1, 5, 0, ("for", 2)),  # ... or at the first session of the frame
    ([H] * 4, [0] * 4, [0] * 4, 3, 3, 0, None),  # a full run of `for` is no excuse
    ([H] * 5, [0, 1, 0, 0, 0], [0] * 5, 4, 1, 5, ("cooldown", 1)),
    ([H] * 6, [1, 0, 0, 1, 0, 0], [0] * 6, 5, 1, 4, ("cooldown", 3)),  # the last firing within the window
    ([H] * 6, [1, 0, 0, 0, 0, 0], [0] * 6, 5, 1, 3, None),  # a firing before the window
    ([H] * 6, [0, 0, 1, 0, 0, 0], [0] * 6, 5, 1, 3, ("cooldown", 2)),  # the window's first session counts
]


@pytest.mark.parametrize("holds, fires, active, i, for_sessions, cooldown, why", QUIET)
def test_held_but_quiet_names_the_reason_and_the_session_it_refers_to(holds, fires, active, i, for_sessions,
                                                                       cooldown, why):
    from bot.engine.lifecycle import held_but_quiet
    got = held_but_quiet(np.array(holds, dtype=float), np.array(fires, dtype=bool), np.array(active, dtype=bool),
                         i, for_sessions, cooldown)
    assert got == why


# What `check` and `explain` say about a rule's inputs and values on one session, on a hand-made frame:
# A and B daily (value, sessions since the last real value), C monthly.
def frame_of(a_age, b_age, c_values, a=None):
    from bot.data import calendar
    from bot.engine.frame import Frame, Monthly
    n = len(a_age)
    frame = Frame(calendar.sessions("2024-07-01", "2024-08-30")[:n])
    frame.daily["A"] = np.array(a if a is not None else [1.0] * n, dtype=float)
    frame.daily["B"] = np.ones(n)
    frame.age["A"], frame.age["B"] = np.array(a_age), np.array(b_age)
    c = np.array(c_values, dtype=float)
    frame.monthly["C"] = Monthly(value=c, mom=c / 10, yoy=c / 2, released=np.array([1.0] + [0.0] * (n - 1)),
                                 month=np.full(n, np.datetime64("2024-06-01"), dtype="datetime64[D]"))
    return frame


def evaluated(frame, rules_yaml):
    from bot.engine.evaluate import evaluate
    from bot.settings.models import SeriesDef
    from bot.settings.rules_file import loads_rules
    series = {"A": SeriesDef(name="A", source="csv"), "B": SeriesDef(name="B", source="csv"),
              "C": SeriesDef(name="C", source="csv", frequency="monthly", units="index")}
    return evaluate(loads_rules(rules_yaml, series), frame)


LATCH = """\
rules:
  - id: r
    when: A > 0 and C > 0
    resolve: true
    clear_when: B > 0
"""
PLAIN = "rules:\n  - id: r\n    when: A > 0 and C > 0\n"


@pytest.mark.parametrize("a_age, b_age, c, gaps", [
    ([0, 0], [0, 0], [5, 5], []),
    ([0, 1], [0, 0], [5, 5], ["A carried forward from 2024-07-01"]),
    ([0, 0, 0, 3], [0, 0, 0, 0], [5] * 4, ["A carried forward from 2024-07-01"]),  # MAX_CARRY: still carried
    ([0, 0, 0, 0, 4], [0] * 5, [5] * 5, ["A missing (no value for 4 sessions)"]),
    ([0, 100], [0, 0], [5, 5], ["A missing (no value for 100 sessions)"]),
    ([0, 1_500_000], [0, 0], [5, 5], ["A missing (no value for any sessions)"]),
    ([0, 10**6], [0, 0], [5, 5], ["A missing (no value for any sessions)"]),
    ([0, 0], [0, 0], [5, np.nan], ["C not yet released"]),
    ([0, 10**9], [0, 10**9], [5, np.nan], ["A missing (no value for any sessions)", "C not yet released",
                                            "B missing (no value for any sessions)"]),  # clear_when's too
])
def test_gaps_name_each_carried_missing_or_unreleased_input_in_the_order_the_rule_reads_them(a_age, b_age, c,
                                                                                            gaps):
    ev = evaluated(frame_of(a_age, b_age, c), LATCH)
    assert ev.gaps(ev.rule("r"), len(a_age) - 1) == gaps


def test_gaps_of_a_rule_without_clear_when_read_its_condition_only():
    ev = evaluated(frame_of([0, 10**9], [0, 10**9], [5, 5]), PLAIN)
    assert ev.gaps(ev.rule("r"), 1) == ["A missing (no value for any sessions)"]


@pytest.mark.parametrize("when, message", [
    ("yoy_pct(C) > 2 and released(C)", "yoy_pct(C) = +3.00; released(C) = 1"),  # a release day: 1, not +1.00
    ("A > B", "A = +2.00; B = +1.00"),  # no function: the series themselves
    ("A > 1 and not fired(first, 3)", "A = +2.00"),  # another rule's firing is no value
])
def test_the_default_message_gives_each_value_the_rule_reads(when, message):
    rules = f"rules:\n  - id: first\n    when: A > 100\n  - id: r\n    when: {when}\n"
    ev = evaluated(frame_of([0, 0], [0, 0], [6, 6], a=[2.0, 2.0]), rules)
    assert ev.message(ev.rule("r"), 0) == message


def test_fired_counts_a_firing_from_the_first_session_on():
    """`fired(rule, n)` before n sessions of history exist: what has fired so far, not unknown."""
    rules = ("rules:\n  - id: first\n    when: A > 1\n    cooldown: 0\n"
             "  - id: after\n    when: fired(first, 3)\n    cooldown: 0\n")
    ev = evaluated(frame_of([0] * 5, [0] * 5, [5] * 5, a=[2, 0, 0, 0, 0]), rules)
    assert at(ev.fires["after"]) == [0, 1, 2]


@pytest.mark.parametrize("when, b", [
    ("A / B > 1", [0.0, 1.0]),  # 2 / 0
    ("(A - 2) / B < 1", [0.0, 1.0]),  # 0 / 0
    ("A * B > 1", [1e308, 1.0]),  # past the largest float
])
def test_arithmetic_without_an_answer_is_unknown_and_prints_no_numpy_warning(when, b):
    import warnings
    frame = frame_of([0, 0], [0, 0], [5, 5], a=[2.0, 2.0])
    frame.daily["B"] = np.array(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning on stderr reads like a crash to a user
        ev = evaluated(frame, f"rules:\n  - id: r\n    when: {when}\n")
    assert np.isnan(ev.holds["r"][0]) and ev.holds["r"][1] == 1.0
