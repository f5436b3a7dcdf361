"""A rule as the engine sees it: checked expression trees and settled options, nothing left to look up.

Rules are built by the rules-file loader (`bot.settings.rules_file`), which
checks every field and places every problem at file:line:col; the engine
only evaluates them. Parameters (`params: {rally: 4}`) are bound into the
trees as numbers, and `with_params` rebinds them, so `sweep` can evaluate one
rule for many values without reading the file again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

from bot.engine import expr as E
from bot.engine.functions import FUNCTIONS, MAX_WINDOW, N, is_window
from bot.engine.messages import Template

DIRECTIONS = ("up", "down")


def default_direction(severity: str) -> str:
    """The move a rule predicts for its benchmark when it does not say: info rules up, the others down."""
    return "up" if severity == "info" else "down"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    condition: E.Node  # parameters bound (E.Param), ready to evaluate
    when_text: str  # the condition as written, all:/any:/not: spelled out
    for_sessions: int = 1
    cooldown: int = 5
    severity: str = "warning"
    notify: tuple[str, ...] | None = None  # None: settings route by severity
    message: Template | None = None
    benchmark: str | None = None
    chart: tuple[str, ...] = ()
    line: int = 0
    params: Mapping[str, float] = field(default_factory=dict, hash=False)  # name -> the value bound
    direction: str = "down"  # the move the rule predicts for its benchmark: up or down
    resolve: bool = False  # once fired, active until it clears; a resolved notice then
    clear_for: int = 1  # sessions in a row the clear condition must hold
    clear_when: E.Node | None = None  # None: the rule clears when its condition is false
    clear_text: str | None = None

    @cached_property
    def series(self) -> tuple[str, ...]:
        """Every series the condition reads, in order of appearance."""
        return names_in(self.condition)

    @cached_property
    def depends(self) -> frozenset[str]:
        """Rule ids read through fired(...), in the condition or the clear condition."""
        trees = [self.condition] + ([self.clear_when] if self.clear_when is not None else [])
        return frozenset(a.rule_id for tree in trees for n in E.walk(tree)
                         if isinstance(n, E.Call) and n.func == "fired"
                         for a in n.args[:1] if isinstance(a, E.RuleRef))

    @cached_property
    def needs(self) -> tuple[str, ...]:
        """Every series the rule reads anywhere: condition, clear condition, message, benchmark, chart."""
        out: list[str] = []
        trees = [self.condition, self.clear_when] + [p.node for p in (self.message.expressions
                                                                       if self.message else [])]
        for name in [n for tree in trees if tree is not None for n in names_in(tree)] + \
                [*([self.benchmark] if self.benchmark else []), *self.chart]:
            if name not in out:
                out.append(name)
        return tuple(out)

    @property
    def clear_condition(self) -> E.Node:
        """What must hold for the rule to clear: `clear_when`, else `not when`."""
        return self.clear_when if self.clear_when is not None else E.Unary(0, 0, "not", self.condition)


def names_in(node: E.Node) -> tuple[str, ...]:
    seen: list[str] = []
    for n in E.walk(node):
        if isinstance(n, E.Name) and n.name not in seen:
            seen.append(n.name)
    return tuple(seen)


def bind(rule: Rule, values: Mapping[str, float]) -> Rule:
    """The rule with parameters bound to `values` in its condition, clear condition and message."""
    values = {k: float(v) for k, v in values.items()}
    message = None
    if rule.message is not None:
        message = Template(tuple(p if isinstance(p, str) else dataclasses.replace(p, node=E.substitute(p.node, values))
                                 for p in rule.message.pieces))
    clear = E.substitute(rule.clear_when, values) if rule.clear_when is not None else None
    return dataclasses.replace(rule, condition=E.substitute(rule.condition, values), clear_when=clear,
                               message=message, params={**rule.params, **values})


def with_params(rule: Rule, values: Mapping[str, float]) -> Rule:
    """The rule with some of its parameters set to other values (sweep evaluates one per value).

    Raises KeyError for a name the rule does not declare and ValueError for a value that is
    not a number, or not a whole number of sessions where the parameter is a window.
    """
    unknown = [name for name in values if name not in rule.params]
    if unknown:
        declared = ", ".join(rule.params) or "none"
        raise KeyError(f"rule {rule.id} has no parameter '{unknown[0]}' (its parameters: {declared})")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"{rule.id}: parameter {name} must be a number, got {value!r}")
    bound = bind(rule, values)
    for tree in _trees(bound):
        for node in E.walk(tree):
            if isinstance(node, E.Call) and node.func in FUNCTIONS:
                for arg, kind in zip(node.args, FUNCTIONS[node.func].params):
                    if kind == N and isinstance(arg, E.Param) and not is_window(arg.value):
                        raise ValueError(f"{rule.id}: parameter {arg.name} is a window of {node.func}(); it must "
                                         f"be a whole number of sessions from 1 to {MAX_WINDOW}, got {arg.value:g}")
    return bound


def _trees(rule: Rule):
    yield rule.condition
    if rule.clear_when is not None:
        yield rule.clear_when
    if rule.message is not None:
        for part in rule.message.expressions:
            yield part.node

