"""`explain` for a phone (the Why? button's answer): one sub-condition per line, at most 40 characters wide.

`explain`'s text is a table for a terminal (expression, value, margin and
state in columns over 100 characters wide), which a phone wraps into noise in
its proportional font. Here each sub-condition is a line of its own with a
mark (✓ holds, ✗ does not, ? unknown) and its expression, and under it, in a
few words, its value, its threshold and the margin ("-0.13 vs 0.00, needs
+0.13 more"). Every line is wrapped to WIDTH, so nothing depends on the font.
Only the Explanation's data is read; nothing is evaluated here.
"""

from __future__ import annotations

import textwrap

from bot.render.explain import headline, margin_words, num

WIDTH = 40
MARK = {True: "✓", False: "✗", None: "?"}
LOGIC = {"and": "all of:", "or": "any of:", "not": "not:"}
MAX_INDENT = 6  # deeper conditions stay at this indent, so a nested rule still leaves room for its text


def _wrap(text: str, indent: int = 0, hang: int = 0) -> list[str]:
    """`text` in lines of at most WIDTH, the first indented by `indent`, the rest by `indent + hang`."""
    return textwrap.wrap(text, WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + hang),
                         break_long_words=True, break_on_hyphens=False) or [""]


def _node(node, depth: int) -> list[str]:
    indent = min(2 * depth, MAX_INDENT)
    mark = MARK[node.holds]
    head = LOGIC.get(node.kind) if node.children and node.kind in LOGIC else node.expr
    out = _wrap(f"{mark} {head}", indent, hang=2)
    detail = []
    if node.kind == "compare":
        words = f"{num(node.value)} vs {num(node.threshold)}"
        margin = margin_words(node)
        detail.append(f"{words}, {margin}" if margin else words)
    elif node.kind == "leaf" and node.value is not None and node.holds is None and node.note is None:
        detail.append(num(node.value))
    if node.note:
        detail.append(node.note)
    detail += [m.reason for m in node.missing]
    for text in detail:
        out += _wrap(text, indent + 2, hang=0)
    for child in node.children:
        out += _node(child, depth + 1)
    return out


def phone_lines(result) -> list[str]:
    """An Explanation (bot.app's explain) as lines of at most WIDTH characters."""
    out = _wrap(headline(result), hang=2)
    if result.note:
        out += _wrap(f"({result.note})", hang=1)
    out += _node(result.condition, 0)
    out += _wrap(f"last fired before: {result.last_fired_before or 'never'}")
    out += _wrap(f"next after: {result.next_fired_after or 'none'}")
    for line in result.revised:
        out += _wrap(f"note: {line}", hang=2)
    return out
