"""Message templates: `IWM {pct_change(IWM, 5):+.1f}% in 5 sessions`.

Each `{...}` holds an expression of the rule language with an optional Python
format spec after the first top-level ':'; `{{` and `}}` are literal braces.
Templates are parsed and their format specs tried at validation, so a typo
never surfaces as a broken alert on a user's phone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.engine import expr as E
from bot.errors import TemplateError


@dataclass(frozen=True)
class Part:
    node: E.Node
    spec: str
    offset: int  # where the expression starts in the template text
    text: str


@dataclass(frozen=True)
class Template:
    pieces: tuple  # str literals and Parts, in order

    @property
    def expressions(self) -> list[Part]:
        return [p for p in self.pieces if isinstance(p, Part)]

    def render(self, value_of) -> str:
        """`value_of(node)` gives the value of an expression on the alert's session."""
        out = []
        for piece in self.pieces:
            out.append(piece if isinstance(piece, str) else format_value(value_of(piece.node), piece.spec))
        return "".join(out)


def format_value(value, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if spec:
        return format(float(value), spec)
    return f"{float(value):.2f}"


def parse_template(text: str) -> Template:
    pieces: list = []
    literal = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
            continue
        if char == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
            continue
        if char == "}":
            raise TemplateError("a lone '}' in the message; write '}}' for a brace", i)
        if char == "{":
            close = _closing(text, i)
            body = text[i + 1:close]
            expr_text, spec = _split_spec(body)
            start = i + 1 + (len(expr_text) - len(expr_text.lstrip()))
            try:
                node = E.parse(expr_text.strip())
            except E.ExprError as exc:
                raise TemplateError(f"in {{{body}}}: {exc.message}", start + exc.offset) from None
            too_wide = _too_wide(spec)
            if too_wide:
                raise TemplateError(f"in {{{body}}}: {too_wide}", i + 1 + len(expr_text) + 1)
            try:
                format(1.0, spec)
            except ValueError as exc:
                raise TemplateError(f"in {{{body}}}: format '{spec}' is not valid ({exc}); e.g. "
                                    "{pct_change(IWM, 5):+.1f}", i + 1 + len(expr_text) + 1) from None
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(Part(node, spec, start, expr_text.strip()))
            i = close + 1
            continue
        literal.append(char)
        i += 1
    if literal:
        pieces.append("".join(literal))
    return Template(tuple(pieces))


MAX_WIDTH = 40
MAX_PRECISION = 10
# Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d*)[_,]?(?:\.(?P<precision>\d*))?[a-zA-Z%]?$", re.S)


def _too_wide(spec: str) -> str | None:
    """Why a format spec asks for more than an alert can show, or None.

    `{IWM:>999999999}` would build a gigabyte string on every render, so widths
    and precisions are bounded when the rule is validated, not when it fires.
    """
    match = _SPEC.match(spec)
    numbers = ([match.group("width"), match.group("precision")] if match
               else re.findall(r"\d+", spec))  # not a spec Python reads: refuse any large number in it
    width = int(match.group("width") or 0) if match else max((int(n) for n in numbers if n), default=0)
    precision = int(match.group("precision") or 0) if match else 0
    if width > MAX_WIDTH:
        return (f"width {width} in format '{spec}' is too wide; at most {MAX_WIDTH} characters, "
                f"e.g. {{pct_change(IWM, 5):>8.1f}}")
    if precision > MAX_PRECISION:
        return (f"precision {precision} in format '{spec}' is too fine; at most {MAX_PRECISION} digits, "
                f"e.g. {{pct_change(IWM, 5):+.2f}}")
    return None


def _closing(text, start):
    depth = 0
    for j in range(start + 1, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
        elif text[j] == "}" and depth <= 0:
            return j
        elif text[j] == "{":
            break
    raise TemplateError("'{' is not closed by '}'; write '{{' for a literal brace", start)


def _split_spec(body):
    depth = 0
    for j, char in enumerate(body):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == ":" and depth == 0:
            return body[:j], body[j + 1:]
    return body, ""
