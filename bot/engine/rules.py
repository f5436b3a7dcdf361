"""The rules file as typed objects, validated once, with every problem at file:line:col.

Validation happens in three passes, all reporting into one list so a user
fixes every mistake in one go: the YAML itself (`bot.settings.yamlfile`), the
fields of each rule (pydantic), then each expression: names, functions,
argument counts and kinds, true/false vs number, rule references and cycles.
Nothing half-valid is ever evaluated: `load_rules` returns rules or raises.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.engine import expr as E
from bot.engine.functions import FUNCTIONS, MAX_WINDOW, M, N, RULE, X
from bot.engine.messages import Template, TemplateError, parse_template
from bot.errors import ConfigError
from bot.settings import yamlfile
from bot.settings.yamlfile import Problem, did_you_mean

RULE_ID = r"^[A-Za-z0-9_-]{1,64}$"
Channel = Literal["console", "telegram", "email"]
Severity = Literal["info", "warning", "critical"]

CONDITION_SCHEMA = {
    "description": "An expression such as `pct_change(IWM, 5) >= 3`, or all:/any: lists, or not:",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "object", "properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/Condition"},
                                                  "minItems": 1}},
         "required": ["all"], "additionalProperties": False},
        {"type": "object", "properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/Condition"},
                                                  "minItems": 1}},
         "required": ["any"], "additionalProperties": False},
        {"type": "object", "properties": {"not": {"$ref": "#/$defs/Condition"}},
         "required": ["not"], "additionalProperties": False},
    ],
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleSpec(_Strict):
    id: str = Field(pattern=RULE_ID, description="Letters, digits, - and _; how fired(...) and /mute refer to it")
    title: str = Field("", max_length=200, description="One line shown at the top of the alert")
    when: Any = Field(description="When the rule holds: an expression, or all:/any:/not:")
    for_: int = Field(1, alias="for", ge=1, le=250,
                      description="Sessions in a row the condition must hold before the rule fires")
    cooldown: int | None = Field(None, ge=0, le=1000,
                                 description="Sessions after a firing before it may fire again (0: every session)")
    severity: Severity | None = Field(None, description="info, warning or critical")
    notify: list[Channel] | None = Field(None, description="Channels: console, telegram, email")
    message: str | None = Field(None, max_length=2000,
                                description="Alert text; {expression:format} parts are filled in")
    benchmark: str | None = Field(None, description="Series whose forward returns the backtest reports")
    chart: list[str] | None = Field(None, description="Series drawn in the alert's chart (default: the rule's)")
    enabled: bool = Field(True, description="false keeps the rule in the file without evaluating it")


class Defaults(_Strict):
    cooldown: int = Field(5, ge=0, le=1000)
    severity: Severity = "warning"
    notify: list[Channel] | None = None


class _Top(_Strict):
    """The file's top level, checked before each rule is checked on its own."""

    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Any]


class RulesFile(_Top):
    """The whole file as the JSON Schema describes it."""

    rules: list[RuleSpec] = Field(description="The rules, evaluated after every close")


def json_schema() -> dict:
    """JSON Schema of the rules file, for editors that speak the YAML language server."""
    schema = RulesFile.model_json_schema(by_alias=True)
    schema.setdefault("$defs", {})["Condition"] = CONDITION_SCHEMA
    when = schema["$defs"]["RuleSpec"]["properties"]["when"]
    schema["$defs"]["RuleSpec"]["properties"]["when"] = {"$ref": "#/$defs/Condition",
                                                         "description": when.get("description", "")}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Closebell rules"
    return schema


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    condition: E.Node
    when_text: str
    for_sessions: int
    cooldown: int
    severity: str
    notify: tuple[str, ...] | None  # None: settings route by severity
    message: Template | None
    benchmark: str | None
    chart: tuple[str, ...]
    series: tuple[str, ...]  # every series the condition reads, in order of appearance
    depends: frozenset[str] = field(default_factory=frozenset)  # rule ids read through fired(...)
    line: int = 0


@dataclass
class Catalog:
    """What names mean while checking: the declared series and which of them are monthly."""

    series: set[str]
    monthly: set[str]


class _Checker:
    """Resolves names and checks kinds for one expression, collecting problems."""

    def __init__(self, doc, path, text, catalog: Catalog, rule_ids: set[str], problems: list[Problem],
                 shift: int = 0):
        self.doc, self.path, self.text, self.shift = doc, path, text, shift
        self.catalog, self.rule_ids, self.problems = catalog, rule_ids, problems

    def fail(self, node, message):
        self.problems.append(self.doc.text_problem(self.path, self.text, node.start + self.shift, message))
        return None

    def snippet(self, node):
        return self.text[node.start + self.shift:node.end + self.shift]

    def kind(self, node) -> str | None:
        """'num', 'bool', or None when a problem was reported."""
        if isinstance(node, E.Num):
            return "num"
        if isinstance(node, E.Name):
            if node.name in self.catalog.series:
                return "num"
            if node.name in FUNCTIONS:
                return self.fail(node, f"'{node.name}' is a function: call it, e.g. "
                                       f"{node.name}({FUNCTIONS[node.name].signature})")
            known = sorted(self.catalog.series) + sorted(FUNCTIONS)
            return self.fail(node, f"unknown series '{node.name}'{did_you_mean(node.name, known)} "
                                   f"(series: {', '.join(sorted(self.catalog.series))}; add new ones to "
                                   "series.yaml)")
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
            return self.fail(node, f"unknown function '{node.func}'{did_you_mean(node.func, FUNCTIONS)} "
                                   f"(functions: {', '.join(FUNCTIONS)})")
        if len(node.args) != len(spec.params):
            return self.fail(node, f"{node.func}() takes {len(spec.params)} argument"
                                   f"{'s' if len(spec.params) != 1 else ''} ({spec.signature}), "
                                   f"got {len(node.args)}")
        ok = True
        for arg, param in zip(node.args, spec.params):
            if param == X:
                ok = self.need(arg, self.kind(arg), "num", f"{node.func}() takes a number here") and ok
            elif param == N:
                if not (isinstance(arg, E.Num) and arg.value == int(arg.value) and 1 <= arg.value <= MAX_WINDOW):
                    ok = False
                    self.fail(arg, f"{node.func}(): '{self.snippet(arg)}' must be a whole number of sessions "
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

    @staticmethod
    def _example(spec):
        return ", ".join({X: "IWM", N: "5", M: "CPIAUCSL", RULE: "rule-id"}[p] for p in spec.params)


def _condition(doc, path, value, problems, checker_for, depth=0):
    """`when` (an expression, or all:/any:/not: of further conditions) -> one expression tree."""
    if depth > E.MAX_DEPTH:
        problems.append(doc.problem(path, "conditions nested too deeply"))
        return None
    if isinstance(value, str):
        if not value.strip():
            problems.append(doc.problem(path, "empty condition; write an expression such as "
                                              "pct_change(IWM, 5) >= 3"))
            return None
        try:
            node = E.parse(value)
        except E.ExprError as exc:
            problems.append(doc.text_problem(path, value, exc.offset, exc.message))
            return None
        checker = checker_for(path, value)
        kind = checker.kind(node)
        if kind == "num":
            checker.fail(node, f"a condition must be true or false, but '{value.strip()}' is a number; "
                               f"compare it, e.g. {value.strip()} >= 3")
            return None
        return _Located(node, path, value) if kind == "bool" else None
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("all", "any", "not"):
        key, body = next(iter(value.items()))
        if key == "not":
            inner = _condition(doc, path + ("not",), body, problems, checker_for, depth + 1)
            return _Located(("not", inner), path, None) if inner is not None else None
        if not isinstance(body, list) or not body:
            problems.append(doc.problem(path + (key,), f"'{key}:' takes a list of conditions, one per '- ' line"))
            return None
        parts = [_condition(doc, path + (key, i), item, problems, checker_for, depth + 1)
                 for i, item in enumerate(body)]
        if any(p is None for p in parts):
            return None
        return _Located((key, parts), path, None)
    if isinstance(value, dict):
        keys = ", ".join(map(str, value)) or "nothing"
        bad = next((k for k in value if k not in ("all", "any", "not")), None)
        hint = did_you_mean(bad, ["all", "any", "not"]) if bad is not None else ""
        problems.append(doc.problem(path, f"a condition mapping takes exactly one of all:, any:, not: "
                                          f"(found {keys}){hint}", prefer_key=False))
        return None
    what = "nothing" if value is None else f"{type(value).__name__} {value!r}"
    problems.append(doc.problem(path, f"a condition is an expression such as 'pct_change(IWM, 5) >= 3' or an "
                                      f"all:/any:/not: mapping; found {what}"))
    return None


@dataclass
class _Located:
    """A checked condition before it is folded into one expression tree."""

    node: Any
    path: tuple
    text: str | None


def _fold(located: _Located) -> tuple[E.Node, str]:
    """all/any/not trees -> one expression tree, plus readable text of the whole condition."""
    if located.text is not None:
        return located.node, located.text.strip()
    kind, body = located.node
    if kind == "not":
        node, text = _fold(body)
        return E.Unary(0, 0, "not", node), f"not ({text})"
    parts = [_fold(p) for p in body]
    node, text = parts[0][0], f"({parts[0][1]})"
    op = "and" if kind == "all" else "or"
    for part, part_text in parts[1:]:
        node = E.Binary(0, 0, op, node, part)
        text += f" {op} ({part_text})"
    return node, text


def _series_in(node) -> tuple[str, ...]:
    seen = []
    for n in E.walk(node):
        if isinstance(n, E.Name) and n.name not in seen:
            seen.append(n.name)
    return tuple(seen)


def _depends(node) -> frozenset[str]:
    return frozenset(a.rule_id for n in E.walk(node) if isinstance(n, E.Call) and n.func == "fired"
                     for a in n.args[:1] if isinstance(a, E.RuleRef))


def _cycles(rules: dict[str, Rule]) -> list[list[str]]:
    """Every cycle of fired(...) references, each reported once."""
    cycles, state = [], {}

    def visit(rid, stack):
        state[rid] = "active"
        stack.append(rid)
        for dep in sorted(rules[rid].depends):
            if dep not in rules:
                continue
            if state.get(dep) == "active":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[rid] = "done"

    for rid in rules:
        if rid not in state:
            visit(rid, [])
    return cycles


def order(rules: list[Rule]) -> list[Rule]:
    """Rules sorted so that every rule comes after the rules it reads through fired(...)."""
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


def _specs(doc: yamlfile.Document, problems: list[Problem]):
    """(defaults, [(index, RuleSpec)]) checking each rule on its own, so one bad rule hides no other."""
    from bot.settings.load import validate_part
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), "expected a mapping with a 'rules:' list, found "
                                            f"{type(data).__name__}")])
    top, found = validate_part(doc, _Top, data)
    if top is None:
        problems.extend(found)
        if not isinstance(data.get("rules"), list):
            raise ConfigError(sorted(problems))
        top = _Top(rules=data["rules"])
    specs = []
    for i, item in enumerate(top.rules):
        spec, found = validate_part(doc, RuleSpec, item if item is not None else {}, ("rules", i))
        problems.extend(found)
        if spec is not None:
            specs.append((i, spec))
    return top.defaults, specs


def parse_rules(doc: yamlfile.Document, catalog: Catalog) -> list[Rule]:
    problems: list[Problem] = []
    defaults, specs = _specs(doc, problems)
    ids = [spec.id for _, spec in specs]
    seen: dict[str, int] = {}
    for i, spec in specs:
        if spec.id in seen:
            first = doc.position(("rules", seen[spec.id], "id"))[0]
            problems.append(doc.problem(("rules", i, "id"), f"rule id '{spec.id}' is used twice (first on line "
                                                            f"{first}); ids must be unique"))
        seen.setdefault(spec.id, i)
    all_ids = set(ids)
    rules: dict[str, Rule] = {}
    for i, spec in specs:
        base = ("rules", i)

        def checker_for(path, text, shift=0):
            return _Checker(doc, path, text, catalog, all_ids, problems, shift)

        located = _condition(doc, base + ("when",), spec.when, problems, checker_for)
        template = None
        if spec.message is not None:
            try:
                template = parse_template(spec.message)
            except TemplateError as exc:
                problems.append(doc.text_problem(base + ("message",), spec.message, exc.offset, exc.message))
            else:
                for part in template.expressions:
                    checker_for(base + ("message",), spec.message, part.offset).kind(part.node)
        for key, names in (("benchmark", [spec.benchmark] if spec.benchmark else []), ("chart", spec.chart or [])):
            for j, name in enumerate(names):
                if name not in catalog.series:
                    where = base + (key,) if key == "benchmark" else base + (key, j)
                    problems.append(doc.problem(where, f"unknown series '{name}'"
                                                       f"{did_you_mean(name, catalog.series)}"))
        if located is None:
            continue
        node, text = _fold(located)
        series = _series_in(node)
        rules[spec.id] = Rule(
            id=spec.id, title=spec.title or spec.id, condition=node, when_text=text,
            for_sessions=spec.for_,
            cooldown=spec.cooldown if spec.cooldown is not None else defaults.cooldown,
            severity=spec.severity or defaults.severity,
            notify=tuple(spec.notify) if spec.notify is not None else (
                tuple(defaults.notify) if defaults.notify is not None else None),
            message=template, benchmark=spec.benchmark,
            chart=tuple(spec.chart) if spec.chart else tuple(s for s in series if s in catalog.series),
            series=series, depends=_depends(node), line=doc.position(base)[0])
        if not spec.enabled:
            rules[spec.id] = None  # checked, kept for fired(...) lookups, never evaluated
    live = {rid: r for rid, r in rules.items() if r is not None}
    index_of = {spec.id: i for i, spec in specs}
    for cycle in _cycles(live):
        index = index_of[cycle[0]]
        problems.append(doc.problem(("rules", index, "when"),
                                    f"rules refer to each other in a cycle: {' -> '.join(cycle)}; "
                                    "fired(...) must not loop back"))
    for rid, rule in live.items():
        for dep in rule.depends:
            if dep in rules and rules[dep] is None:
                problems.append(doc.problem(("rules", index_of[rid], "when"),
                                            f"fired({dep}, ...) reads a rule with enabled: false"))
    if problems:
        raise ConfigError(sorted(set(problems)))
    return order([r for r in rules.values() if r is not None])


def catalog_of(series_defs) -> Catalog:
    return Catalog(series=set(series_defs), monthly={n for n, s in series_defs.items() if s.frequency == "monthly"})


def load_rules(path, series_defs, display: str | None = None) -> list[Rule]:
    """Read and validate a rules file; raise ConfigError listing every problem."""
    doc = yamlfile.load(path, display)
    return parse_rules(doc, catalog_of(series_defs))


def loads_rules(text: str, series_defs, name: str = "rules.yaml") -> list[Rule]:
    return parse_rules(yamlfile.loads(text, name), catalog_of(series_defs))


