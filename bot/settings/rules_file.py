"""The rules file as typed objects, validated once, with every problem at file:line:col.

Validation happens in three passes, all reporting into one list so a user
fixes every mistake in one go: the YAML itself (`bot.settings.yamlfile`), the
fields of each rule (pydantic), then each expression (`bot.engine.check`):
names, functions, argument counts and kinds, true/false vs number, rule
references, parameters and cycles. A rule whose fields are wrong still has its
expressions checked. Nothing half-valid is ever evaluated: `load_rules`
returns rules or raises ConfigError.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.engine import expr as E
from bot.engine.check import Catalog, check_condition, check_template
from bot.engine.functions import FUNCTIONS
from bot.engine.order import cycles, order
from bot.engine.rules import DIRECTIONS, Rule, bind, default_direction
from bot.errors import ConfigError
from bot.settings import yamlfile
from bot.settings.load import validate_part
from bot.settings.models import Channel, Severity
from bot.settings.yamlfile import Problem
from bot.suggest import did_you_mean

RULE_ID = r"^[A-Za-z0-9_-]{1,64}$"
PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")

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
PARAMS_SCHEMA = {
    "description": "Named numbers usable in when, clear_when and message, e.g. {rally: 4, rise: 0.20}",
    "type": "object",
    "propertyNames": {"pattern": PARAM_NAME.pattern},
    "additionalProperties": {"type": "number"},
}


class _Strict(BaseModel):
    # defer_build: built on first use (see bot.settings.models.Strict); RulesFile only ever for the schema
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class RuleSpec(_Strict):
    id: str = Field(pattern=RULE_ID, description="Letters, digits, - and _; how fired(...) and /mute refer to it")
    title: str = Field("", max_length=200, description="One line shown at the top of the alert")
    when: Any = Field(description="When the rule holds: an expression, or all:/any:/not:")
    params: dict[Any, Any] | None = Field(None, description=PARAMS_SCHEMA["description"])
    for_: int = Field(1, alias="for", ge=1, le=250,
                      description="Sessions in a row the condition must hold before the rule fires")
    cooldown: int | None = Field(None, ge=0, le=1000,
                                 description="Sessions after a firing before it may fire again (0: every session)")
    severity: Severity | None = Field(None, description="info, warning or critical")
    direction: Literal[DIRECTIONS] | None = Field(
        None, description="The move the rule predicts for its benchmark (the backtest's hit rate): up or down; "
                          "default down for warning and critical, up for info")
    resolve: bool = Field(False, description="Send one 'resolved' notice when the rule clears; while it has "
                                             "fired and not cleared it does not fire again")
    clear_for: int = Field(1, ge=1, le=250, description="Sessions in a row the clear condition must hold "
                                                        "(with resolve: true)")
    clear_when: Any = Field(None, description="The condition that clears the rule (with resolve: true; default: "
                                              "its when is false)")
    notify: list[Channel] | None = Field(None, description="Channels, e.g. [telegram, email]")
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
    props = schema["$defs"]["RuleSpec"]["properties"]
    for key in ("when", "clear_when"):
        props[key] = {"$ref": "#/$defs/Condition", "description": props[key].get("description", "")}
    props["params"] = PARAMS_SCHEMA
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Closebell rules"
    return schema


def catalog_of(series_defs) -> Catalog:
    return Catalog(series=set(series_defs), monthly={n for n, s in series_defs.items() if s.frequency == "monthly"})


def load_rules(path, series_defs, display: str | None = None) -> list[Rule]:
    """Read and validate a rules file; raise ConfigError listing every problem."""
    doc = yamlfile.load(path, display)
    return parse_rules(doc, catalog_of(series_defs))


def loads_rules(text: str, series_defs, name: str = "rules.yaml") -> list[Rule]:
    return parse_rules(yamlfile.loads(text, name), catalog_of(series_defs))


# --- conditions: an expression, or all:/any:/not: of further conditions ------------------------

@dataclass
class _Located:
    """A checked condition before it is folded into one expression tree."""

    node: Any
    path: tuple
    text: str | None


def _condition(doc, path, value, problems, check, depth=0):
    """`when` (an expression, or all:/any:/not: of further conditions) -> a _Located, or None."""
    if depth > E.MAX_DEPTH:
        problems.append(doc.problem(path, "conditions nested too deeply"))
        return None
    if isinstance(value, str):
        if not value.strip():
            problems.append(doc.problem(path, "empty condition; write an expression such as "
                                              "pct_change(IWM, 5) >= 3"))
            return None
        node = check(path, value)
        return _Located(node, path, value) if node is not None else None
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("all", "any", "not"):
        key, body = next(iter(value.items()))
        if key == "not":
            inner = _condition(doc, path + ("not",), body, problems, check, depth + 1)
            return _Located(("not", inner), path, None) if inner is not None else None
        if not isinstance(body, list) or not body:
            problems.append(doc.problem(path + (key,), f"'{key}:' takes a list of conditions, one per '- ' line"))
            return None
        parts = [_condition(doc, path + (key, i), item, problems, check, depth + 1)
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


# --- the fields of each rule -------------------------------------------------------------------

def _specs(doc: yamlfile.Document, problems: list[Problem]):
    """(defaults, [(index, RuleSpec, trusted)]) checking each rule on its own, so one bad rule hides no other.

    A rule whose fields fail is kept `trusted=False` with the failing fields dropped, so its
    expressions are still checked (a `cooldwon` typo must not hide a `pct_chg` typo).
    """
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
            specs.append((i, spec, True))
        elif isinstance(item, dict):
            salvaged = _salvage(item, i)
            if salvaged is not None:
                specs.append((i, salvaged, False))
    return top.defaults, specs


def _salvage(item: dict, index: int) -> RuleSpec | None:
    """The rule without the fields pydantic refused (already reported), if its `when` survives."""
    try:
        RuleSpec.model_validate(item)
    except ValidationError as exc:
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
    else:
        return None
    known = {f.alias or name for name, f in RuleSpec.model_fields.items()}
    kept = {k: v for k, v in item.items() if k in known and k not in bad}
    if "when" not in kept:
        return None
    kept.setdefault("id", f"rules-{index}")
    try:
        return RuleSpec.model_validate(kept)
    except ValidationError:
        return None


def _params(doc, base, spec: RuleSpec, catalog: Catalog, problems) -> dict[str, float]:
    """The rule's parameters (name -> value); every refused name or value is reported.

    A refused value is given 1 so that the expressions using the name are still checked.
    """
    out: dict[str, float] = {}
    for name, value in (spec.params or {}).items():
        where = base + ("params", name)
        text = str(name)
        wrong = None
        if not isinstance(name, str) or not PARAM_NAME.match(name):
            wrong = (f"parameter name '{text}' is not a name: letters, digits and _, starting with a letter "
                     f"(at most 40), e.g. rally")
        elif name in E.RESERVED_WORDS:
            wrong = f"parameter name '{name}' is a reserved word; choose another, e.g. {name}_level"
        elif name in catalog.series:
            wrong = f"parameter '{name}' has the name of a series, which it would hide; rename it, e.g. " \
                    f"{name.lower()}_level"
        elif name in FUNCTIONS:
            wrong = f"parameter '{name}' has the name of a function, which it would hide; rename it, e.g. " \
                    f"{name}_n"
        if wrong:
            problems.append(doc.problem(where, wrong, prefer_key=True))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(doc.problem(where, f"parameter '{name}' must be a number, e.g. {name}: 4 "
                                               f"(got {value!r})"))
            out[name] = 1.0
            continue
        out[name] = float(value)
    return out


def parse_rules(doc: yamlfile.Document, catalog: Catalog) -> list[Rule]:
    """Every rule of the document, checked and in dependency order; or ConfigError with every problem."""
    problems: list[Problem] = []
    defaults, specs = _specs(doc, problems)
    seen: dict[str, int] = {}
    for i, spec, trusted in specs:
        if not trusted and spec.id == f"rules-{i}":
            continue
        if spec.id in seen:
            first = doc.position(("rules", seen[spec.id], "id"))[0]
            problems.append(doc.problem(("rules", i, "id"), f"rule id '{spec.id}' is used twice (first on line "
                                                            f"{first}); ids must be unique"))
        seen.setdefault(spec.id, i)
    all_ids = set(seen)
    rules: dict[str, Rule] = {}
    disabled: set[str] = set()
    index_of: dict[str, int] = {}
    for i, spec, _ in specs:
        rule = _rule(doc, ("rules", i), spec, defaults, catalog, all_ids, problems)
        if rule is None:
            continue
        index_of.setdefault(spec.id, i)
        if spec.enabled:
            rules.setdefault(spec.id, rule)
        else:
            disabled.add(spec.id)  # checked, kept for fired(...) lookups, never evaluated
    for cycle in cycles({rid: rule.depends for rid, rule in rules.items()}):
        problems.append(doc.problem(("rules", index_of[cycle[0]], "when"),
                                    f"rules refer to each other in a cycle: {' -> '.join(cycle)}; "
                                    "fired(...) must not loop back"))
    for rid, rule in rules.items():
        for dep in sorted(rule.depends & disabled):
            problems.append(doc.problem(("rules", index_of[rid], "when"),
                                        f"fired({dep}, ...) reads a rule with enabled: false"))
    if problems:
        raise ConfigError(sorted(set(problems)))
    return order(list(rules.values()))


# Characters no alert may carry in its title (every one) or message (all but a line break and a tab):
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators. A CR/LF in a title becomes a
# broken email Subject that fails on every retry.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _rule(doc, base, spec: RuleSpec, defaults: Defaults, catalog: Catalog, all_ids, problems) -> Rule | None:
    """One rule from its fields, every expression checked; None when something was reported."""
    before = len(problems)
    params = _params(doc, base, spec, catalog, problems)

    def check(path, text):
        node, findings = check_condition(text, catalog, all_ids, params)
        problems.extend(doc.text_problem(path, text, f.offset, f.message) for f in findings)
        return node

    located = _condition(doc, base + ("when",), spec.when, problems, check)
    clear = None
    if spec.clear_when is not None:
        clear = _condition(doc, base + ("clear_when",), spec.clear_when, problems, check)
    for key in ("clear_when", "clear_for"):
        if key in spec.model_fields_set and not spec.resolve:
            problems.append(doc.problem(base + (key,), f"{key} applies only to a rule with resolve: true; "
                                                       f"add resolve: true", prefer_key=True))
    for key, text, allowed in (("title", spec.title, ""), ("message", spec.message or "", "\n\t")):
        bad = next((m for m in _CONTROL.finditer(text) if m.group() not in allowed), None)
        if bad:
            fix = ("(an email Subject cannot carry it: every send would fail); a title is one line of plain "
                   "text: remove it" if key == "title"
                   else "; only line breaks and tabs may appear in a message: remove it")
            problems.append(doc.text_problem(base + (key,), text, bad.start(),
                                             f"'{key}' holds the control character {bad.group()!r} {fix}"
                                             .replace(" ;", ";")))
    template = None
    if spec.message is not None:
        template, findings = check_template(spec.message, catalog, all_ids, params)
        problems.extend(doc.text_problem(base + ("message",), spec.message, f.offset, f.message) for f in findings)
    for key, names in (("benchmark", [spec.benchmark] if spec.benchmark else []), ("chart", spec.chart or [])):
        for j, name in enumerate(names):
            if name not in catalog.series:
                where = base + (key,) if key == "benchmark" else base + (key, j)
                problems.append(doc.problem(where, f"unknown series '{name}'{did_you_mean(name, catalog.series)}"))
    if located is None or len(problems) > before:
        return None
    node, text = _fold(located)
    clear_node, clear_text = _fold(clear) if clear is not None else (None, None)
    severity = spec.severity or defaults.severity
    rule = bind(Rule(
        id=spec.id, title=spec.title or spec.id, condition=node, when_text=text,
        for_sessions=spec.for_,
        cooldown=spec.cooldown if spec.cooldown is not None else defaults.cooldown,
        severity=severity,
        notify=tuple(spec.notify) if spec.notify is not None else (
            tuple(defaults.notify) if defaults.notify is not None else None),
        message=template, benchmark=spec.benchmark, chart=tuple(spec.chart or ()),
        line=doc.position(base)[0],
        direction=spec.direction or default_direction(severity),
        resolve=spec.resolve, clear_for=spec.clear_for, clear_when=clear_node, clear_text=clear_text,
    ), params)
    if not rule.chart:
        rule = dataclasses.replace(rule, chart=tuple(s for s in rule.series if s in catalog.series))
    return rule
