"""The daily (or weekly) digest: one short message after the run.

What fired that session; and when nothing did, the rules nearest to firing
with what each still needs, read from the same explanation as `explain`:
"small-cap-trap: change(DGS10, 5) >= 0 is -0.03, needs +0.03 more".
"""

from __future__ import annotations

from bot.engine.explain import explain

NEAREST = 3


def digest_text(evaluation, i: int, fired_ids: list[str]) -> str:
    day = evaluation.frame.sessions[i].date()
    lines = [f"Closebell digest for {day:%a %Y-%m-%d}"]
    if fired_ids:
        lines.append(f"Fired: {', '.join(fired_ids)}.")
        return "\n".join(lines)
    lines.append("Nothing fired. Nearest to firing:")
    ranked = []
    for rule in evaluation.rules:
        result = explain(evaluation, rule, i)
        if result.verdict != "false":
            continue
        needs = [leaf for leaf in _leaves(result.condition) if leaf.holds is False and leaf.move is not None]
        if needs:
            distance = sum(abs(n.move) / max(abs(n.threshold or 0.0), 1.0) for n in needs)
            ranked.append((len(needs), distance, rule.id, needs))
    for _count, _distance, rule_id, needs in sorted(ranked)[:NEAREST]:
        parts = [f"{n.expr} is {n.value:+.2f}, needs {n.move:+.2f} more" for n in needs]
        lines.append(f"• {rule_id}: {'; '.join(parts)}")
    if not ranked:
        lines.append("• no rule could be evaluated on this session")
    return "\n".join(lines)


def _leaves(node):
    if node.kind == "compare":
        yield node
    for child in node.children:
        yield from _leaves(child)


def due(mode: str, session, next_session) -> bool:
    """Daily: every session; weekly: the last session of its week."""
    if mode == "daily":
        return True
    if mode == "weekly":
        return session.isocalendar()[:2] != next_session.isocalendar()[:2]
    return False
