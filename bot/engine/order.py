"""Dependency order of rules that read each other through fired(...), and the cycles that forbid one."""

from __future__ import annotations

from typing import Iterable, Mapping


def cycles(depends: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every cycle of fired(...) references (rule id -> ids it reads), each reported once, e.g. [a, b, a]."""
    found, state = [], {}

    def visit(rid, stack):
        state[rid] = "active"
        stack.append(rid)
        for dep in sorted(depends[rid]):
            if dep not in depends:
                continue
            if state.get(dep) == "active":
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[rid] = "done"

    for rid in depends:
        if rid not in state:
            visit(rid, [])
    return found


def order(rules: list) -> list:
    """Rules sorted so that every rule comes after the rules it reads through fired(...).

    Otherwise the file's order is kept. Rules need `id` and `depends`; cycles must have been refused.
    """
    by_id = {r.id: r for r in rules}
    done, out = set(), []

    def place(rule):
        if rule.id in done:
            return
        done.add(rule.id)
        for dep in sorted(rule.depends):
            if dep in by_id:
                place(by_id[dep])
        out.append(rule)

    for rule in rules:
        place(rule)
    return out
