"""`resolve: true`: a rule that fired stays active, does not fire again, and resolves once when it clears.

Without `resolve` a rule fires on every session its condition holds (cooldown apart), exactly as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from bot.data import calendar
from bot.engine.evaluate import evaluate, fire
from bot.engine.frame import Frame
from bot.settings.load import load_series
from bot.settings.models import SeriesDef
from bot.settings.rules_file import loads_rules
from tests.conftest import ROOT
from tests.test_logic import evaluate_on_history

SERIES = {"A": SeriesDef(name="A", source="csv"), "B": SeriesDef(name="B", source="csv")}
U = np.nan


def run(a, b=None, **fields):
    """Evaluate one rule `r` (fields as YAML) over hand-made values of A (and B)."""
    body = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    rules = loads_rules(f"rules:\n  - id: r\n{body}", SERIES)
    sessions = calendar.sessions("2024-07-01", "2024-08-30")[: len(a)]
    frame = Frame(sessions)
    for name, values in (("A", a), ("B", b if b is not None else [1.0] * len(a))):
        frame.daily[name] = np.array(values, dtype=float)
        frame.age[name] = np.where(np.isnan(frame.daily[name]), 10**9, 0)
    return evaluate(rules, frame)


def at(mask) -> list[int]:
    return np.flatnonzero(mask).tolist()


def test_without_resolve_a_rule_fires_on_every_session_it_holds():
    ev = run([1, 1, -1, 1], when="A > 0", cooldown=0)
    assert at(ev.fires["r"]) == [0, 1, 3]
    assert at(ev.resolves["r"]) == [] and at(ev.active["r"]) == []


def test_with_resolve_it_fires_once_then_resolves_the_first_session_it_is_false():
    ev = run([1, 1, 1, -1, 1, 1], when="A > 0", cooldown=0, resolve="true")
    assert at(ev.fires["r"]) == [0, 4]
    assert at(ev.resolves["r"]) == [3]
    assert at(ev.active["r"]) == [0, 1, 2, 4, 5]


def test_clear_for_needs_that_many_clear_sessions_in_a_row():
    ev = run([1, -1, 1, -1, -1, 1], when="A > 0", cooldown=0, resolve="true", clear_for=2)
    assert at(ev.fires["r"]) == [0, 5]
    assert at(ev.resolves["r"]) == [4]


def test_unknown_never_counts_toward_clearing():
    ev = run([1, U, U, -1, 1], when="A > 0", cooldown=0, resolve="true")
    assert at(ev.resolves["r"]) == [3]
    assert at(ev.fires["r"]) == [0, 4]


def test_unknown_breaks_a_clear_run():
    ev = run([1, -1, U, -1, -1], when="A > 0", cooldown=0, resolve="true", clear_for=2)
    assert at(ev.resolves["r"]) == [4]


def test_clear_when_gives_hysteresis_fire_high_clear_low():
    # fire at A >= 2; 1.0 is not low enough to clear, so the second 2.2 does not fire again
    ev = run([2.5, 1.0, 2.2, 0.4, 2.1], when="A >= 2", cooldown=0, resolve="true", clear_when="A <= 0.5")
    assert at(ev.fires["r"]) == [0, 4]
    assert at(ev.resolves["r"]) == [3]


def test_the_clear_run_starts_after_the_firing_session():
    # B > 0 (the clear condition) already holds on the firing session: it resolves on the next one,
    # and may fire again on the session after that, never on the session it resolves
    ev = run([1, 1, 1, 1], [1, 1, 1, 1], when="A > 0", cooldown=0, resolve="true", clear_when="B > 0")
    assert at(ev.fires["r"]) == [0, 2]
    assert at(ev.resolves["r"]) == [1, 3]


def test_cooldown_still_applies_after_a_resolution():
    ev = run([1, -1, 1, 1, 1, 1], when="A > 0", cooldown=3, resolve="true")
    assert at(ev.resolves["r"]) == [1]
    assert at(ev.fires["r"]) == [0, 4]


def test_for_sessions_applies_to_firing_with_resolve():
    ev = run([1, 1, -1, 1, 1, 1], when="A > 0", cooldown=0, resolve="true", **{"for": 2})
    assert at(ev.fires["r"]) == [1, 4]
    assert at(ev.resolves["r"]) == [2]


def test_a_rule_still_active_at_the_end_never_resolves():
    ev = run([1, 1, 1], when="A > 0", cooldown=0, resolve="true")
    assert at(ev.fires["r"]) == [0] and at(ev.resolves["r"]) == [] and ev.active["r"].all()


def test_without_resolve_fires_equal_the_plain_firing_rule():
    a = [1, 1, -1, 1, U, 1, 1, 1, -1, 1]
    ev = run(a, when="A > 0", cooldown=2)
    assert at(ev.fires["r"]) == at(fire(ev.holds["r"], 1, 2))


# --- on real history -----------------------------------------------------------------------------

STRETCHED = "zscore(IWM, 20) >= 2"
CALM = "zscore(IWM, 20) <= 0.5"


def reference_episodes(z: np.ndarray, high=2.0, low=0.5) -> tuple[list[int], list[int]]:
    """Fire when z >= high while not active; resolve the first later session z <= low. Plain Python."""
    fires, resolves, active = [], [], False
    for i, value in enumerate(z):
        if np.isnan(value):
            continue
        if active and value <= low:
            resolves.append(i)
            active = False
        elif not active and value >= high:
            fires.append(i)
            active = True
    return fires, resolves


@pytest.fixture(scope="module")
def stretched(data_dir):
    text = f"""
rules:
  - id: plain
    when: {STRETCHED}
    cooldown: 0
  - id: episodes
    when: {STRETCHED}
    cooldown: 0
    resolve: true
    clear_when: {CALM}
"""
    series = load_series(ROOT / "config" / "series.yaml")
    return evaluate_on_history(loads_rules(text, series), series, data_dir)


def test_on_real_history_resolve_turns_each_stretched_run_into_one_firing(stretched):
    ev = stretched
    plain, episodes = int(ev.fires["plain"].sum()), int(ev.fires["episodes"].sum())
    z = ev.context.eval(ev.rule("plain").condition.left)
    fires, resolves = reference_episodes(z)
    assert at(ev.fires["episodes"]) == fires
    assert at(ev.resolves["episodes"]) == resolves
    # documented change: one firing per episode (fired at z >= 2, cleared at z <= 0.5) instead of one per session
    assert plain > 2 * episodes > 0


def test_on_real_history_a_resolution_separates_every_two_firings(stretched):
    ev = stretched
    fires, resolves = at(ev.fires["episodes"]), at(ev.resolves["episodes"])
    for first, second in zip(fires, fires[1:]):
        between = [r for r in resolves if first < r < second]
        assert len(between) == 1, (first, second, between)
