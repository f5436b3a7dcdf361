"""Rules x frame -> when each rule held and fired, on every session at once.

`evaluate` is the single code path behind `check` (read one session),
`backtest` (read a window) and the daemon. Every function is computed once per
distinct sub-expression over all sessions (vectorized), and shared between
rules. Only the cooldown needs a loop, and it runs over the sessions where a
rule's condition held, not over every session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bot.engine import expr as E
from bot.engine.frame import MAX_CARRY, Frame
from bot.engine.functions import FUNCTIONS, M, N, RULE
from bot.engine.messages import format_value
from bot.engine.rules import Rule

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


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
                return left * right  # NaN (unknown) wins over false: an expression touching a gap is false
            if node.op == "or":
                return np.maximum(left, right)
            with np.errstate(divide="ignore", invalid="ignore"):
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


def fire(holds: np.ndarray, for_sessions: int, cooldown: int) -> np.ndarray:
    """A rule fires when it held on each of the last `for_sessions` sessions and did not fire in the
    previous `cooldown` sessions."""
    ok = holds == 1.0
    if for_sessions > 1:
        runs = pd.Series(ok.astype(float)).rolling(for_sessions, min_periods=for_sessions).sum().to_numpy()
        ok = runs == for_sessions
    fires = np.zeros(len(ok), dtype=bool)
    last = -10**9
    for i in np.flatnonzero(ok):
        if i - last > cooldown:
            fires[i] = True
            last = i
    return fires


@dataclass
class Evaluation:
    frame: Frame
    rules: list[Rule]
    holds: dict[str, np.ndarray] = field(default_factory=dict)
    fires: dict[str, np.ndarray] = field(default_factory=dict)
    context: Context | None = None

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def fire_dates(self, rule_id: str, start=None, end=None) -> pd.DatetimeIndex:
        sessions = self.frame.sessions[self.fires[rule_id]]
        if start is not None:
            sessions = sessions[sessions >= pd.Timestamp(start)]
        if end is not None:
            sessions = sessions[sessions <= pd.Timestamp(end)]
        return sessions

    def fired_on(self, i: int) -> list[Rule]:
        return [r for r in self.rules if self.fires[r.id][i]]

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
        for name in rule.series:
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
        fires = fire(holds, rule.for_sessions, rule.cooldown)
        context.fires[rule.id] = fires
        evaluation.holds[rule.id] = holds
        evaluation.fires[rule.id] = fires
    return evaluation


def forward_return(frame: Frame, series: str, i: int, sessions: int) -> float:
    """% change of `series` from session i to i + sessions (NaN past the data)."""
    values = frame.series(series)
    j = i + sessions
    if j >= len(values) or np.isnan(values[i]) or np.isnan(values[j]):
        return float("nan")
    return float((values[j] / values[i] - 1.0) * 100.0)

