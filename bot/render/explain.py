"""`explain` as text: the verdict in a sentence, the condition as a table, the neighbouring firings.

A terminal table (expression, value, margin, state in columns); the Why? button
answers with bot.render.phone instead, from the same Explanation. `margin` is
to spare (positive) or short (negative) whatever the operator; the text says
"needs +x more" from `move` (threshold - value), the way a person reads it.
"""

from __future__ import annotations


def num(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.4g}"


def headline(x) -> str:
    """What happened to the rule on the day, in one sentence."""
    d, v = x.date.isoformat(), x.verdict
    if v == "fired":
        return f"{x.rule} fired on {d}"
    if v == "cooldown":
        return f"{x.rule} held on {d} but was in cooldown since {x.since}"
    if v == "pending_for":
        k, n = x.progress
        return f"{x.rule} held on {d} but `for` is not met yet: {k} of {n} sessions in a row"
    if v == "active":
        return f"{x.rule} held on {d}, still active since it fired on {x.since} (not cleared)"
    if v == "unknown":
        why = "; ".join(m.reason for m in x.missing)
        return f"{x.rule} was unknown on {d}" + (f": {why}" if why else "")
    return f"{x.rule} did not hold on {d}"


def margin_words(node) -> str:
    """'needs +0.13 more', '3.06 to spare' or 'at the threshold' for a comparison ('' otherwise)."""
    if node.holds is False and node.margin == 0:
        return "at the threshold"
    if node.holds is False and node.move is not None:
        return f"needs {node.move:+.2f} more"
    if node.holds is True and node.margin is not None:
        return f"{abs(node.margin):.2f} to spare"
    return ""


def explain_lines(x) -> list[str]:
    """The plain text form of an Explanation for a terminal: verdict, tree, neighbours, revision notes."""
    out = [headline(x)]
    rows: list[tuple[str, str, str, str]] = []

    def visit(node, depth: int):
        state = {True: "true", False: "false", None: "unknown"}[node.holds]
        value = detail = ""
        if node.kind == "compare":
            value = num(node.value)
            detail = margin_words(node)
        elif node.kind == "leaf" and node.value is not None and node.op is None and node.note is None:
            value = num(node.value) if node.holds is None else ""
        if node.note:
            detail = node.note
        if node.missing:
            state += " (" + "; ".join(m.reason for m in node.missing) + ")"
        rows.append(("  " * depth + node.expr, value, detail, state))
        for child in node.children:
            visit(child, depth + 1)

    visit(x.condition, 1)
    width = max(len(r[0]) for r in rows)
    vwidth = max((len(r[1]) for r in rows), default=0)
    dwidth = max((len(r[2]) for r in rows), default=0)
    for expr, value, detail, state in rows:
        out.append(f"{expr.ljust(width)}  {value.rjust(vwidth)}  {detail.ljust(dwidth)}  {state}".rstrip())
    out.append(f"last fired before: {x.last_fired_before or 'never (in the data)'}; "
               f"next after: {x.next_fired_after or 'none (in the data)'}")
    out += [f"note: {line}" for line in x.revised]
    return out
