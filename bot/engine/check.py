"""Type checking of rule expressions: names, functions, argument kinds, true/false vs number.

Each finding is (offset, message) relative to the text it was found in, so
the rules-file loader can place it at file:line:col and a chat command or a
test can place it anywhere else. Checking never stops at the first finding:
every problem of an expression is reported at once, and an expression that
does not even parse still has its unknown names reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from bot.engine import expr as E
from bot.engine.functions import FUNCTIONS, MAX_WINDOW, M, N, RULE, X, is_window
from bot.engine.messages import Template, parse_template
from bot.errors import TemplateError
from bot.suggest import closest, did_you_mean


@dataclass
class Catalog:
    """What names mean while checking: the declared series and which of them are monthly."""

    series: set[str]
    monthly: set[str] = field(default_factory=set)


@dataclass(frozen=True, order=True)
class Finding:
    offset: int  # characters into the text checked
    message: str


class Checker:
    """Resolves names and checks kinds of expressions over one text, collecting findings.

    `shift` places a node's offsets in `text` (a template part starts inside the message).
    `params` are the rule's parameter names and values: numbers wherever a number goes.
    """

    def __init__(self, text: str, catalog: Catalog, rule_ids=(), params: Mapping[str, float] | None = None,
                 shift: int = 0):
        self.text, self.shift = text, shift
        self.catalog, self.rule_ids, self.params = catalog, set(rule_ids), dict(params or {})
        self.findings: list[Finding] = []

    def fail(self, node, message):
        self.findings.append(Finding(node.start + self.shift, message))
        return None

    def snippet(self, node):
        return self.text[node.start + self.shift:node.end + self.shift]

    def kind(self, node) -> str | None:
        """'num', 'bool', or None when a problem was reported."""
        if isinstance(node, E.Num):
            return "num"
        if isinstance(node, E.Name):
            if node.name in self.catalog.series or node.name in self.params:
                return "num"
            if node.name in FUNCTIONS:
                return self.fail(node, f"'{node.name}' is a function: call it, e.g. "
                                       f"{node.name}({FUNCTIONS[node.name].signature})")
            return self.fail(node, self.unknown_series(node.name))
        if isinstance(node, E.Unary):
            inner = self.kind(node.operand)
            if node.op == "-":
                return self.need(node.operand, inner, "num", "'-' applies to a number") and "num"
            return self.need(node.operand, inner, "bool", "'not' applies to a condition") and "bool"
        if isinstance(node, E.Binary):
            left, right = self.kind(node.left), self.kind(node.right)
            if node.op in ("and", "or"):
                ok = self.need(node.left, left, "bool", f"'{node.op}' joins conditions")
                ok = self.need(node.right, right, "bool", f"'{node.op}' joins conditions") and ok
                return "bool" if ok else None
            ok = self.need(node.left, left, "num", f"'{node.op}' works on numbers")
            ok = self.need(node.right, right, "num", f"'{node.op}' works on numbers") and ok
            if not ok:
                return None
            return "bool" if node.op in E.COMPARISONS else "num"
        if isinstance(node, E.Call):
            return self.call(node)
        if isinstance(node, E.RuleRef):
            return self.fail(node, "a rule id is only valid inside fired(...)")
        return self.fail(node, "unsupported expression")

    def unknown_series(self, name: str) -> str:
        """A bare name that is neither a series nor a parameter. In a rule with `params:` it is as likely a
        misspelt parameter (`leed` for `lead`) as a series, so both are offered, the parameters first; a
        name spelt like a series (IWN) nearest to a series stays an unknown series."""
        series = ", ".join(sorted(self.catalog.series))
        known = sorted(self.catalog.series) + sorted(FUNCTIONS)
        if self.params and (name[:1].islower() or closest(name, list(self.params) + known) in self.params):
            return (f"unknown parameter or series '{name}'{did_you_mean(name, list(self.params) + known)} (this "
                    f"rule's parameters: {', '.join(self.params)}; series: {series}; add new ones to params: or "
                    "series.yaml)")
        hint = did_you_mean(name, known)
        param = f"; or declare a parameter: params: {{{name}: 4}}" if not hint and name[:1].islower() else ""
        return f"unknown series '{name}'{hint} (series: {series}; add new ones to series.yaml{param})"

    def unknown_function(self, name: str) -> str:
        return f"unknown function '{name}'{did_you_mean(name, FUNCTIONS)} (functions: {', '.join(FUNCTIONS)})"

    def need(self, node, got, want, why) -> bool:
        if got is None:
            return False
        if got != want:
            what = "a condition (true/false)" if got == "bool" else "a number"
            example = (f"compare it, e.g. {self.snippet(node)} >= 1" if got == "num"
                       else "use it with and/or/not")
            self.fail(node, f"{why}, but '{self.snippet(node)}' is {what}; {example}")
            return False
        return True

    def call(self, node: E.Call) -> str | None:
        spec = FUNCTIONS.get(node.func)
        if spec is None:
            if node.func in self.catalog.series:
                return self.fail(node, f"'{node.func}' is a series, not a function; write it bare, "
                                       f"e.g. {node.func} > 100, or pct_change({node.func}, 5)")
            return self.fail(node, self.unknown_function(node.func))
        if len(node.args) != len(spec.params):
            return self.fail(node, f"{node.func}() takes {len(spec.params)} argument"
                                   f"{'s' if len(spec.params) != 1 else ''} ({spec.signature}), "
                                   f"got {len(node.args)}")
        ok = True
        for arg, param in zip(node.args, spec.params):
            if param == X:
                ok = self.need(arg, self.kind(arg), "num", f"{node.func}() takes a number here") and ok
            elif param == N:
                window = arg.value if isinstance(arg, E.Num) else self.params.get(getattr(arg, "name", None))
                if window is None or not is_window(window):
                    ok = False
                    what = (f"parameter '{arg.name}' ({window:g})" if isinstance(arg, E.Name) and window is not None
                            else f"'{self.snippet(arg)}'")
                    self.fail(arg, f"{node.func}(): {what} must be a whole number of sessions "
                                   f"from 1 to {MAX_WINDOW}, e.g. {node.func}({self._example(spec)})")
            elif param == M:
                if not isinstance(arg, E.Name) or arg.name not in self.catalog.monthly:
                    ok = False
                    monthly = ", ".join(sorted(self.catalog.monthly)) or "none declared"
                    unknown = isinstance(arg, E.Name) and arg.name not in self.catalog.series
                    what = (f"unknown series '{arg.name}'{did_you_mean(arg.name, self.catalog.monthly)}"
                            if unknown else f"got '{self.snippet(arg)}'")
                    self.fail(arg, f"{node.func}() takes a monthly series (monthly: {monthly}); {what}")
            elif param == RULE:
                if not isinstance(arg, E.RuleRef) or arg.rule_id not in self.rule_ids:
                    ok = False
                    name = self.snippet(arg)
                    self.fail(arg, f"fired(): no rule with id '{name}'{did_you_mean(name, self.rule_ids)}")
        return spec.returns if ok else None

    def words(self, text: str, shift: int, besides: int) -> None:
        """After a syntax error at `besides`: report the unknown names of the text too."""
        for word in E.words(text):
            after_dot = word.start > 0 and text[word.start - 1] == "."
            if word.start + shift == besides or after_dot or word.text in ("and", "or", "not"):
                continue
            if word.called:
                if word.text not in FUNCTIONS and word.text not in self.catalog.series:
                    self.findings.append(Finding(word.start + shift, self.unknown_function(word.text)))
            elif (word.text not in self.catalog.series and word.text not in self.params
                  and word.text not in FUNCTIONS and not word.text.startswith("__")
                  and word.text not in E.RESERVED_WORDS):
                self.findings.append(Finding(word.start + shift, self.unknown_series(word.text)))

    @staticmethod
    def _example(spec):
        return ", ".join({X: "IWM", N: "5", M: "CPIAUCSL", RULE: "rule-id"}[p] for p in spec.params)


def check_condition(text: str, catalog: Catalog, rule_ids=(), params: Mapping[str, float] | None = None
                    ) -> tuple[E.Node | None, list[Finding]]:
    """Parse and check an expression that must be a condition: (tree, []) or (None, findings)."""
    checker = Checker(text, catalog, rule_ids, params)
    try:
        node = E.parse(text)
    except E.ExprError as exc:
        checker.findings.append(Finding(exc.offset, exc.message))
        checker.words(text, 0, exc.offset)
        return None, sorted(set(checker.findings))
    kind = checker.kind(node)
    if kind == "num":
        written = text.strip()
        checker.fail(node, f"a condition must be true or false, but '{written}' is a number; "
                           f"compare it, e.g. {written} >= 3")
    if checker.findings:
        return None, sorted(set(checker.findings))
    return node, []


def check_template(text: str, catalog: Catalog, rule_ids=(), params: Mapping[str, float] | None = None
                   ) -> tuple[Template | None, list[Finding]]:
    """Parse a message template and check each `{expression}` in it as a number or condition."""
    try:
        template = parse_template(text)
    except TemplateError as exc:
        return None, [Finding(exc.offset, exc.message)]
    findings: list[Finding] = []
    for part in template.expressions:
        checker = Checker(text, catalog, rule_ids, params, part.offset)
        checker.kind(part.node)
        findings.extend(checker.findings)
    return (None, sorted(set(findings))) if findings else (template, [])
