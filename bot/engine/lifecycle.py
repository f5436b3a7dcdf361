"""When a rule fires and, with `resolve: true`, when it resolves: over every session at once.

Only the sessions where something can happen are visited: the candidate
firings (the condition true for `for` sessions in a row) and, for rules that
resolve, the sessions that complete a clear run. So a backtest over sixty
years loops over a few hundred indices per rule, not fifteen thousand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def runs_complete(truth: np.ndarray, length: int) -> np.ndarray:
    """True where `truth` was true (1.0) on each of the last `length` sessions; unknown breaks a run."""
    ok = truth == 1.0
    if length <= 1:
        return ok
    runs = pd.Series(ok.astype(float)).rolling(length, min_periods=length).sum().to_numpy()
    return runs == length


def fire(holds: np.ndarray, for_sessions: int, cooldown: int) -> np.ndarray:
    """A rule fires when it held on each of the last `for_sessions` sessions and did not fire in the
    previous `cooldown` sessions."""
    ok = runs_complete(holds, for_sessions)
    fires = np.zeros(len(ok), dtype=bool)
    last = -10**9
    for i in np.flatnonzero(ok):
        if i - last > cooldown:
            fires[i] = True
            last = i
    return fires


def fire_and_resolve(holds: np.ndarray, clears: np.ndarray, for_sessions: int, cooldown: int,
                     clear_for: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fires, resolves, active) for a rule with `resolve: true` (Alertmanager's send_resolved).

    Once it fires the rule is active: it does not fire again until it resolves, on the first session
    after the firing that completes `clear_for` sessions in a row of `clears` being true (unknown never
    counts toward clearing). It may fire again after that session, the cooldown still counting from
    its last firing. `active` is true from a firing up to the session before its resolution.
    """
    n = len(holds)
    candidates = np.flatnonzero(runs_complete(holds, for_sessions))
    cleared = np.flatnonzero(runs_complete(clears, clear_for))
    fires = np.zeros(n, dtype=bool)
    resolves = np.zeros(n, dtype=bool)
    active = np.zeros(n, dtype=bool)
    start = 0  # the first session a firing may fall on
    last = -10**9
    while True:
        k = np.searchsorted(candidates, max(start, last + cooldown + 1))
        if k >= len(candidates):
            break
        f = int(candidates[k])
        fires[f] = True
        last = f
        # the clear run must lie wholly after the firing session
        j = np.searchsorted(cleared, f + clear_for)
        if j >= len(cleared):
            active[f:] = True
            break
        r = int(cleared[j])
        resolves[r] = True
        active[f:r] = True
        start = r + 1
    return fires, resolves, active


def held_but_quiet(holds: np.ndarray, fires: np.ndarray, active: np.ndarray, i: int, for_sessions: int,
                   cooldown: int) -> tuple[str, int] | None:
    """Why a rule whose condition holds on session `i` does not fire there, so `check` can say it instead
    of a bare "holds" that reads like a lost alert.

    ("active", j): a `resolve: true` rule that fired on session j and has not cleared; ("for", k): the
    condition held on the last k sessions in a row, fewer than `for`; ("cooldown", j): it fired on
    session j, within `cooldown` sessions. None when it fires on `i` or its condition does not hold.
    """
    if fires[i] or holds[i] != 1.0:
        return None
    if active[i]:
        return "active", int(np.flatnonzero(fires[:i + 1])[-1])
    if for_sessions > 1:
        run = 0
        while run < for_sessions and i - run >= 0 and holds[i - run] == 1.0:
            run += 1
        if run < for_sessions:
            return "for", run
    earlier = np.flatnonzero(fires[max(0, i - cooldown):i])
    if len(earlier):
        return "cooldown", int(max(0, i - cooldown) + earlier[-1])
    return None
