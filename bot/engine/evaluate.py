"""Rules x frame -> when each rule held, fired and resolved, on every session at once.

`evaluate` is the single code path behind `check` (read one session),
`backtest` (read a window) and the daemon. Every function is computed once per
distinct sub-expression over all sessions (vectorized), and shared between
rules. Conditions are three-valued (true 1.0, false 0.0, unknown NaN, Kleene's
logic); a rule fires only where its condition is true. Only the firing
lifecycle (`bot.engine.lifecycle`) loops, over candidate sessions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bot.engine import expr as E
from bot.engine.frame import MAX_CARRY, Frame
from bot.engine.functions import FUNCTIONS, M, N, RULE
from bot.engine.lifecycle import fire, fire_and_resolve  # noqa: F401 - fire is part of this module's API
from bot.engine.messages import format_value
from bot.engine.rules import Rule, names_in

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def kleene_and(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Three-valued `and`: false if either side is false, else unknown if either is unknown, else true.

    So `false and unknown` is false: a gap in one series never hides a condition that is already
    settled by another.
    """
    return np.where((left == 0.0) | (right == 0.0), 0.0, left * right)


def kleene_or(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Three-valued `or`: true if either side is true, else unknown if either is unknown, else false.

    So `pct_change(IWM, 1) >= 2 or pct_change(RSP, 1) >= 2` fires on an IWM +2% day before RSP exists.
    """
    return np.where((left == 1.0) | (right == 1.0), 1.0, np.maximum(left, right))


class Context:
    """Evaluates expression trees over a frame, remembering each distinct sub-expression."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.memo: dict[str, np.ndarray] = {}
        self.fires: dict[str, np.ndarray] = {}

    def eval(self, node: E.Node) -> np.ndarray:
        key = node.key()
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._compute(node)
        return found

    def _compute(self, node):
        n = len(self.frame)
        if isinstance(node, E.Num):
            return np.full(n, node.value)
        if isinstance(node, E.Name):
            return self.frame.series(node.name)
        if isinstance(node, E.Unary):
            inner = self.eval(node.operand)
            return -inner if node.op == "-" else 1.0 - inner
        if isinstance(node, E.Binary):
            left, right = self.eval(node.left), self.eval(node.right)
            if node.op == "and":
                return kleene_and(left, right)
            if node.op == "or":
                return kleene_or(left, right)
            # x / 0, 0 / 0 and a product past 1e308 are unknown (NaN below), not a warning on stderr
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if node.op in _COMPARE:
                    out = _COMPARE[node.op](left, right).astype(float)
                    out[np.isnan(left) | np.isnan(right)] = np.nan
                    return out
                out = _ARITH[node.op](left, right)
            out[~np.isfinite(out)] = np.nan
            return out
        if isinstance(node, E.Call):
            return self._call(node)
        raise TypeError(f"cannot evaluate {node!r}")

    def _call(self, node: E.Call):
        spec = FUNCTIONS[node.func]
        if node.func == "fired":
            rule_id, window = node.args[0].rule_id, int(node.args[1].value)
            fires = self.fires[rule_id].astype(float)
            return pd.Series(fires).rolling(window, min_periods=1).max().to_numpy()
        if spec.params == (M,):
            monthly = self.frame.monthly[node.args[0].name]
            return {"mom_pct": monthly.mom, "yoy_pct": monthly.yoy, "released": monthly.released}[node.func]
        args = [int(a.value) if p == N else self.eval(a) for a, p in zip(node.args, spec.params) if p != RULE]
        return spec.impl(*args)


@dataclass
class Evaluation:
    """Per rule id, arrays over the frame's sessions; `context` evaluates any sub-expression (memoized)."""

    frame: Frame
    rules: list[Rule]
    holds: dict[str, np.ndarray] = field(default_factory=dict)  # the condition: 1.0 / 0.0 / NaN (unknown)
    fires: dict[str, np.ndarray] = field(default_factory=dict)  # bool: the rule fired on that session
    resolves: dict[str, np.ndarray] = field(default_factory=dict)  # bool: it resolved (resolve: true only)
    active: dict[str, np.ndarray] = field(default_factory=dict)  # bool: fired and not yet resolved
    context: Context | None = None

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def fire_dates(self, rule_id: str, start=None, end=None) -> pd.DatetimeIndex:
        return self._dates(self.fires[rule_id], start, end)

    def _dates(self, mask, start, end) -> pd.DatetimeIndex:
        """The sessions where `mask` is true, within [start, end]."""
        sessions = self.frame.sessions[mask]
        if start is not None:
            sessions = sessions[sessions >= pd.Timestamp(start)]
        if end is not None:
            sessions = sessions[sessions <= pd.Timestamp(end)]
        return sessions

    def fired_on(self, i: int) -> list[Rule]:
        return [r for r in self.rules if self.fires[r.id][i]]

    def resolved_on(self, i: int) -> list[Rule]:
        return [r for r in self.rules if self.resolves[r.id][i]]

    def value(self, node: E.Node, i: int) -> float:
        return float(self.context.eval(node)[i])

    def values(self, rule: Rule, i: int) -> dict[str, float]:
        """The value on session i of every function the rule's condition calls (series if it calls none)."""
        calls = [n for n in E.walk(rule.condition) if isinstance(n, E.Call) and n.func != "fired"]
        nodes = calls or [n for n in E.walk(rule.condition) if isinstance(n, E.Name)]
        out = {}
        for node in nodes:
            out.setdefault(node.key(), self.value(node, i))
        return out

    def message(self, rule: Rule, i: int) -> str:
        if rule.message is not None:
            return rule.message.render(lambda node: self.value(node, i)).strip()
        parts = []
        for label, value in self.values(rule, i).items():
            parts.append(f"{label} = {format_value(value, '+.2f' if not label.startswith('released') else '.0f')}")
        return "; ".join(parts)

    def gaps(self, rule: Rule, i: int) -> list[str]:
        """Why a rule's inputs are incomplete on session i: carried-forward or missing series."""
        out = []
        clear = names_in(rule.clear_when) if rule.clear_when is not None else ()
        for name in dict.fromkeys(rule.series + clear):
            if name in self.frame.daily:
                age = int(self.frame.age[name][i])
                if age > MAX_CARRY:
                    out.append(f"{name} missing (no value for {age if age < 10**6 else 'any'} sessions)")
                elif age > 0:
                    last = self.frame.sessions[i - age].date()
                    out.append(f"{name} carried forward from {last}")
            elif name in self.frame.monthly and np.isnan(self.frame.monthly[name].value[i]):
                out.append(f"{name} not yet released")
        return out


def evaluate(rules: list[Rule], frame: Frame) -> Evaluation:
    """Evaluate rules (ordered so fired(...) dependencies come first) over every session of `frame`."""
    context = Context(frame)
    evaluation = Evaluation(frame, list(rules), context=context)
    for rule in rules:
        holds = context.eval(rule.condition)
        if rule.resolve:
            clears = context.eval(rule.clear_condition)
            fires, resolves, active = fire_and_resolve(holds, clears, rule.for_sessions, rule.cooldown,
                                                       rule.clear_for)
        else:
            fires = fire(holds, rule.for_sessions, rule.cooldown)
            resolves, active = np.zeros(len(frame), dtype=bool), np.zeros(len(frame), dtype=bool)
        context.fires[rule.id] = fires
        evaluation.holds[rule.id] = holds
        evaluation.fires[rule.id] = fires
        evaluation.resolves[rule.id] = resolves
        evaluation.active[rule.id] = active
    return evaluation
