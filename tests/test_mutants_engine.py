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
