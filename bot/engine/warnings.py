"""Warnings `validate` gives about rules that pass validation but say nothing as written.

A rule can be valid and still useless: it never fired over the data (or can
never be evaluated there), or one of its comparisons sets a threshold its left
side never reached, typically basis points written as points
(`change(DGS10, 5) >= 10`). These are warnings, not errors: the file loads and
the bot runs, but the user hears why the rule stays silent. They are read from
the same evaluation arrays the backtest uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.engine import expr as E
from bot.engine.returns import first_evaluable, window


@dataclass(frozen=True)
class Finding:
    """A warning about a rule that does not fail validation."""

    rule: str
    line: int  # the rule's line in the rules file
    kind: str  # 'never-fired' | 'never-reached'
    message: str
    expr: str | None = None  # the comparison concerned, for never-reached

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict:
        return {"rule": self.rule, "line": self.line, "kind": self.kind, "message": self.message, "expr": self.expr}


def never_fired_warnings(evaluation, start=None, end=None) -> list[Finding]:
    """A rule that never fired over the data (or the window): it says nothing as written."""
    frame = evaluation.frame
    lo, hi = window(frame, start, end)
    by_id = {r.id: r for r in evaluation.rules}
    cache: dict = {}
    out = []
    for rule in evaluation.rules:
        fires = evaluation.fires[rule.id][lo:hi + 1]
        if fires.any() or hi < lo:
            continue
        first = first_evaluable(evaluation.context, rule, by_id, cache)
        if first is None or first > hi:
            text = f"{rule.id} can never be evaluated over the data: some series it reads has no value " \
                   f"within its windows"
        else:
            held = int(np.nansum(evaluation.holds[rule.id][max(lo, first):hi + 1] == 1.0))
            text = (f"{rule.id} never fired over {frame.sessions[max(lo, first)].date()}.."
                    f"{frame.sessions[hi].date()} (its condition held on {held} session"
                    f"{'s' if held != 1 else ''})")
        out.append(Finding(rule.id, rule.line, "never-fired", text))
    return out


def _constant(values: np.ndarray) -> float | None:
    known = values[~np.isnan(values)]
    if len(known) and known.min() == known.max():
        return float(known[0])
    return None


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _fmt(x: float) -> str:
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.3g}"


def never_reached_warnings(evaluation) -> list[Finding]:
    """A comparison against a fixed threshold that its left side never reached over the data,
    e.g. `change(DGS10, 5) >= 10` (basis points written as points)."""
    context, sessions = evaluation.context, evaluation.frame.sessions
    out = []
    for rule in evaluation.rules:
        seen = set()
        for node in E.walk(rule.condition):
            if not (isinstance(node, E.Binary) and node.op in E.COMPARISONS) or node.key() in seen:
                continue
            seen.add(node.key())
            left, right = context.eval(node.left), context.eval(node.right)
            op, side, threshold = node.op, node.left, _constant(right)
            if threshold is None or _constant(left) is not None:
                threshold = _constant(left)
                if threshold is None or _constant(right) is not None:
                    continue
                op, side, left = _FLIP[op], node.right, right
            known = np.flatnonzero(~np.isnan(left))
            if not len(known):
                continue
            lo, hi = float(np.nanmin(left)), float(np.nanmax(left))
            never = {">=": hi < threshold, ">": hi <= threshold, "<=": lo > threshold, "<": lo >= threshold,
                     "==": not (lo <= threshold <= hi), "!=": False}[op]
            if never:
                text = E.unparse(side)
                since = sessions[known[0]].year
                out.append(Finding(rule.id, rule.line, "never-reached",
                                   f"never reached: {text} ranged {_fmt(lo)}..{_fmt(hi)} since {since}, "
                                   f"never {op} {threshold:g} ({rule.id})", E.unparse(node)))
    return out
