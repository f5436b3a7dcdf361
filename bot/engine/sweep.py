"""See a threshold's effect before committing it: one rule evaluated for every value of its parameters.

`sweep` evaluates the rules once, then for each combination of parameter
values re-evaluates only what the parameters touch: the evaluation context
memoizes every sub-expression by its canonical key, and a bound parameter is
keyed as its number, so `pct_change(IWM, 5)` is computed once for the whole
grid while `pct_change(IWM, 5) >= rally` is recomputed per value (the grid in
one pass, as vectorbt broadcasts its parameters). Rules that read the swept
rule through `fired(...)` are re-evaluated with each value, since their
answer depends on it.
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass
from datetime import date
from typing import Mapping, Sequence

import numpy as np

from bot.engine import evaluate as engine
from bot.engine import expr as E
from bot.engine import rules as rules_mod
from bot.engine import significance
from bot.engine.functions import FUNCTIONS, N
from bot.engine.returns import (HORIZONS, ForwardStats, ReturnsCache, benchmark_of, day_of, direction_of,
                                first_evaluable, per_year, rate_span, to_dates, window)
from bot.errors import SweepError

MAX_COMBINATIONS = 10_000
MAX_VALUES = 1_000


# --- NAME=V1,V2,... or NAME=START:STOP:STEP -------------------------------------------------

def parse_values(text: str, name: str = "value") -> list[float]:
    """'4,5,6' or '2:6:0.5' (inclusive of the stop when the step lands on it) -> floats."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise SweepError(f"{name}: a range is START:STOP:STEP, e.g. 2:6:0.5; got '{text}'")
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise SweepError(f"{name}: a range needs STOP >= START and a positive STEP, e.g. 2:6:0.5; "
                                 f"got '{text}'")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > MAX_VALUES:
                raise SweepError(f"{name}: {count} values; sweep at most {MAX_VALUES} per parameter")
            return [round(start + k * step, 10) for k in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise SweepError(f"{name}: '{text}' is not a list of numbers; write {name}=4,5,6 or {name}=2:6:0.5") \
            from None
    if not values or any(not math.isfinite(v) for v in values):
        raise SweepError(f"{name}: no values; write {name}=4,5,6 or {name}=2:6:0.5")
    if len(values) > MAX_VALUES:
        raise SweepError(f"{name}: {len(values)} values; sweep at most {MAX_VALUES} per parameter")
    return values


def parse_grid(specs: Sequence[str]) -> dict[str, list[float]]:
    """['rally=3:6:0.5', 'rise=0,0.1,0.2'] -> {'rally': [...], 'rise': [...]}."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SweepError(f"'{spec}': write NAME=V1,V2,... or NAME=START:STOP:STEP, e.g. rally=3:6:0.5")
        if name in grid:
            raise SweepError(f"parameter {name} is given twice")
        grid[name] = parse_values(values, name)
    return grid


# --- results ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    """What one parameter combination did over one span of sessions."""

    span_from: date | None  # the sessions the rate covers (None: never evaluable there)
    span_to: date | None
    firings: int
    per_year: float | None
    first: date | None
    last: date | None
    dates: list[date]
    forward: dict[int, ForwardStats]

    def to_json(self) -> dict:
        return {"from": _iso(self.span_from), "to": _iso(self.span_to), "firings": self.firings,
                "per_year": self.per_year, "first": _iso(self.first), "last": _iso(self.last),
                "dates": [d.isoformat() for d in self.dates],
                "forward": {str(h): s.to_json() for h, s in self.forward.items()}}


@dataclass(frozen=True)
class SweepRow:
    params: dict[str, float]  # every parameter of the rule, the swept ones at this row's values
    figures: Figures  # over the whole window
    before: Figures | None = None  # with a holdout date: the window before it ...
    after: Figures | None = None  # ... and from it on
    dependents: dict[str, int] | None = None  # firings in the window of each rule reading this one via fired()

    @property
    def firings(self) -> int:
        return self.figures.firings

    @property
    def dates(self) -> list[date]:
        return self.figures.dates

    @property
    def per_year(self) -> float | None:
        return self.figures.per_year

    def to_json(self) -> dict:
        out = {"params": dict(self.params), **self.figures.to_json()}
        if self.before is not None:
            out["before"] = self.before.to_json()
            out["after"] = self.after.to_json()
        out["dependents"] = dict(self.dependents or {})
        return out


def _iso(d):
    return None if d is None else d.isoformat()


@dataclass(frozen=True)
class HoldoutCheck:
    """With --holdout: the value an in-sample search would pick, and whether the holdout confirms it.

    Trying 41 values and keeping the best is 41 chances for noise to look like an edge: about two of
    them reach p <= 0.05 on pure noise. The value chosen is the one with the lowest in-sample p-value
    at `horizon` (among values with enough firings to judge, when any has), and its figures after the
    holdout date are the honest test of it.
    """

    params: dict[str, float]
    tried: int  # values (combinations) searched
    horizon: int
    before: ForwardStats  # in-sample figures of the chosen value
    after: ForwardStats  # its figures from the holdout date on

    @staticmethod
    def _edge(stats: ForwardStats) -> bool:
        return significance.has_edge(stats.known, stats.p_value)

    @property
    def confirmed(self) -> bool:
        return self._edge(self.after)

    @property
    def warning(self) -> str | None:
        """'best of 41 values in-sample; out of sample p = 0.38: likely noise' when the in-sample edge
        is not confirmed out of sample; None when there was no in-sample edge or the holdout confirms it."""
        if not self._edge(self.before) or self.confirmed:
            return None
        best = f"best of {self.tried} values in-sample" if self.tried > 1 else "in-sample"
        if self.after.known < significance.MIN_FIRINGS or self.after.p_value is None:
            return (f"{best}; out of sample {self.after.known} firing(s), too few to confirm it: "
                    "treat it as noise until it fires more")
        return f"{best}; out of sample p = {self.after.p_value:.2f}: likely noise"

    def describe(self, holdout) -> str:
        values = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return (f"chosen in-sample ({values}, the lowest {self.horizon}-session p of {self.tried}): "
                f"before {holdout}: {self.before.known} firing(s), {self.before.verdict}; "
                f"from {holdout}: {self.after.known} firing(s), {self.after.verdict}")


def holdout_check(rows: Sequence["SweepRow"], direction: str = "up", horizon: int = 20) -> HoldoutCheck | None:
    """The in-sample choice among `rows` (made with a holdout) and its out-of-sample result; `direction`
    is the rule's (bot.engine.returns.direction_of)."""
    judged = [r for r in rows if r.before is not None and horizon in r.before.forward
              and r.before.forward[horizon].p_value is not None]
    if not judged:
        return None
    enough = [r for r in judged if r.before.forward[horizon].known >= significance.MIN_FIRINGS]
    sign = -1.0 if direction == "down" else 1.0  # among equal p-values (the floor, 1/10,001), the larger move

    def rank(r):
        stats = r.before.forward[horizon]
        return stats.p_value, -sign * (stats.mean or 0.0)
    best = min(enough or judged, key=rank)
    return HoldoutCheck(dict(best.params), len(rows), horizon, best.before.forward[horizon],
                        best.after.forward[horizon])


# --- the sweep --------------------------------------------------------------------------------

def _dependents(rules, rule_id: str) -> list:
    """Rules reading `rule_id` through fired(...), directly or through each other, in evaluation order."""
    affected = {rule_id}
    out = []
    for rule in rules:  # evaluation order: a rule comes after the rules it reads
        if rule.id != rule_id and set(getattr(rule, "depends", ())) & affected:
            affected.add(rule.id)
            out.append(rule)
    return out


def _bind(rule, values: Mapping[str, float]):
    try:
        return rules_mod.with_params(rule, values)
    except KeyError as exc:
        raise SweepError(exc.args[0] if exc.args else str(exc)) from None
    except ValueError as exc:
        raise SweepError(str(exc)) from None


class _Context(engine.Context):
    """The engine's context, with `fired(r, n)` as a running count instead of a pandas rolling max:
    the same 1.0/0.0 values, a fraction of the cost, which matters once per swept value."""

    def _call(self, node):
        if node.func != "fired":
            return super()._call(node)
        fires = self.fires[node.args[0].rule_id]
        window = int(node.args[1].value)
        counts = np.cumsum(fires, dtype=np.int64)
        within = counts.copy()
        within[window:] -= counts[:-window]
        return (within > 0).astype(float)


def _window_params(rule) -> bool:
    """Whether a parameter sets a window (an n argument), which moves the first evaluable session."""
    for node in E.walk(rule.condition):
        if isinstance(node, E.Call) and node.func in FUNCTIONS:
            if any(kind == N and getattr(arg, "name", None) and isinstance(arg, E.Num)
                   for arg, kind in zip(node.args, FUNCTIONS[node.func].params)):
                return True
    return False


def _fires(context, rule) -> np.ndarray:
    """The rule's firings in `context`: the same steps `evaluate` takes for one rule."""
    holds = context.eval(rule.condition)
    clears = context.eval(rule.clear_condition) if getattr(rule, "resolve", False) else None
    return _fire_from(rule, holds, clears)


def _fire_from(rule, holds: np.ndarray, clears: np.ndarray | None) -> np.ndarray:
    if clears is not None:
        return engine.fire_and_resolve(holds, clears, rule.for_sessions, rule.cooldown, rule.clear_for)[0]
    return engine.fire(holds, rule.for_sessions, rule.cooldown)


_SENTINEL = 1.2345678901234567e-290  # never written by a user; keyed apart from every real number
_CHUNK = 64  # combinations evaluated together: 64 x 16,000 sessions x 8 bytes = 8 MB per node
_ELEMENTWISE = {"abs", "min", "max"}  # functions that broadcast over a column of values as numpy does


def _broadcastable(rule, names) -> bool:
    """Whether every function call around a swept parameter works elementwise (no window over it)."""
    trees = [rule.condition] + ([rule.clear_when] if getattr(rule, "clear_when", None) is not None else [])
    for tree in trees:
        for node in E.walk(tree):
            if isinstance(node, E.Call) and node.func not in _ELEMENTWISE:
                if any(getattr(n, "name", None) in names and isinstance(n, E.Num)
                       for arg in node.args for n in E.walk(arg)):
                    return False
    return True


class _GridContext(_Context):
    """A context in which each sentinel number evaluates to a column of parameter values."""

    def __init__(self, frame, columns: dict[float, np.ndarray]):
        super().__init__(frame)
        self.columns = columns

    def _compute(self, node):
        if isinstance(node, E.Num) and node.value in self.columns:
            return self.columns[node.value]
        return super()._compute(node)


class _Figurer:
    """Figures of one rule's firings over spans, sharing the benchmark's forward returns across rows."""

    def __init__(self, frame, rule, horizons):
        self.frame = frame
        self.bench = benchmark_of(rule, frame)
        self.direction = direction_of(rule)
        self.returns = ReturnsCache(frame, horizons).get(self.bench)
        self.horizons = tuple(horizons)

    def figures(self, fired: np.ndarray, first: int | None, lo: int, hi: int) -> Figures:
        idx = fired[(fired >= lo) & (fired <= hi)]
        span = rate_span(first, idx, lo, hi)
        sessions = self.frame.sessions
        dates = to_dates(sessions, idx)
        stats = self.returns.stats(idx, span, self.direction) if self.returns else {
            h: ForwardStats(h, 0, None, None, None, None, None) for h in self.horizons}
        return Figures(
            span_from=day_of(sessions, span[0]) if span else None, span_to=day_of(sessions, span[1]) if span else None,
            firings=len(idx), per_year=per_year(len(idx), span),
            first=dates[0] if dates else None, last=dates[-1] if dates else None, dates=dates, forward=stats)


def sweep(rules: Sequence, frame, rule_id: str, grid: Mapping[str, Sequence[float]], start=None, end=None,
          holdout=None, horizons: Sequence[int] = HORIZONS, evaluation=None) -> list[SweepRow]:
    """One row per combination of `grid` values (the product, in the order given) for rule `rule_id`.

    `rules` are the evaluated rules in evaluation order (as loaded); `evaluation`, when the caller
    already has one of `rules` over `frame`, is reused instead of evaluating again. The window
    [start, end] limits what is counted; `holdout` splits it into before / from that date.
    """
    if evaluation is None:
        evaluation = engine.evaluate(list(rules), frame)
    rules = list(evaluation.rules)
    by_id = {r.id: r for r in rules}
    if rule_id not in by_id:
        close = difflib.get_close_matches(rule_id, list(by_id), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise SweepError(f"no rule with id '{rule_id}'{hint} (rules: {', '.join(by_id)})")
    rule = by_id[rule_id]
    if not grid:
        raise SweepError(f"name a parameter to sweep, e.g. {next(iter(rule.params), 'NAME')}=1,2,3")
    declared = dict(getattr(rule, "params", {}) or {})
    for name in grid:
        if name not in declared:
            raise SweepError(f"rule {rule_id} has no parameter '{name}' (its parameters: "
                             f"{', '.join(declared) or 'none; declare them with params: {name: value}'})")
    names = list(grid)
    combos = list(itertools.product(*(list(grid[n]) for n in names)))
    if len(combos) > MAX_COMBINATIONS:
        raise SweepError(f"{len(combos)} combinations; sweep at most {MAX_COMBINATIONS} at once")

    lo, hi = window(frame, start, end)
    split = None
    if holdout is not None:
        split = window(frame, holdout, None)[0]
    dependents = _dependents(rules, rule_id)
    affected = [rule_id] + [d.id for d in dependents]
    # Arrays that depend on the swept rule's firings must not be reused across values: fired(...) of it
    # or of its dependents is keyed by rule id, not by value.
    stale = tuple(f"fired({rid}," for rid in affected)
    base = evaluation.context
    stable = {k: v for k, v in base.memo.items() if not any(s in k for s in stale)}
    figurer = _Figurer(frame, rule, horizons)

    # Every value is checked (and the first evaluable session found) through the engine's own binding.
    checked = [_bind(rule, dict(zip(names, map(float, combo)))) for combo in combos[:1]]
    moving = _window_params(rule)  # a window parameter is checked (a whole number) value by value below
    first_context = _Context(frame)
    first_context.memo, first_context.fires = dict(stable), dict(base.fires)
    first_fixed = first_evaluable(first_context, checked[0], {**by_id, rule_id: checked[0]})

    def row(values, fires, context_for_dependents, first):
        counts = {}
        if dependents:
            context = context_for_dependents()
            context.fires[rule_id] = fires
            for dep in dependents:
                context.fires[dep.id] = _fires(context, dep)
                fired_dep = np.flatnonzero(context.fires[dep.id])
                counts[dep.id] = int(((fired_dep >= lo) & (fired_dep <= hi)).sum())
        fired = np.flatnonzero(fires)
        before = after = None
        if split is not None:
            before = figurer.figures(fired, first, lo, min(hi, split - 1))
            after = figurer.figures(fired, first, max(lo, split), hi)
        return SweepRow({**declared, **values}, figurer.figures(fired, first, lo, hi), before, after, counts)

    def fresh():
        context = _Context(frame)
        context.memo, context.fires = dict(stable), dict(base.fires)
        return context

    rows = []
    if not moving and _broadcastable(rule, names):
        # The grid in one pass: each swept parameter is bound to a sentinel number whose array is the
        # column of its values, so every node containing it evaluates for all combinations at once.
        sentinels = {name: _SENTINEL * (1 + k) for k, name in enumerate(names)}
        templated = rules_mod.bind(rule, sentinels)
        for begin in range(0, len(combos), _CHUNK):
            chunk = np.array(combos[begin:begin + _CHUNK], dtype=float).reshape(-1, len(names))
            context = _GridContext(frame, {sentinels[n]: chunk[:, [k]] for k, n in enumerate(names)})
            context.memo, context.fires = dict(stable), dict(base.fires)
            shape = (len(chunk), len(frame))
            holds = np.broadcast_to(context.eval(templated.condition), shape)
            clears = (np.broadcast_to(context.eval(templated.clear_condition), shape)
                      if getattr(rule, "resolve", False) else None)
            for c, combo in enumerate(chunk):
                fires = _fire_from(rule, holds[c], None if clears is None else clears[c])
                rows.append(row(dict(zip(names, map(float, combo))), fires, fresh, first_fixed))
        return rows
    for combo in combos:
        values = dict(zip(names, (float(v) for v in combo)))
        bound = _bind(rule, values) if moving else rules_mod.bind(rule, values)
        context = fresh()
        fires = _fires(context, bound)
        first = first_evaluable(context, bound, {**by_id, rule_id: bound}) if moving else first_fixed
        rows.append(row(values, fires, lambda: context, first))
    return rows
