"""Why a rule did or did not fire on a session: its verdict, and every sub-condition with its values.

Users tune thresholds by editing a file; `explain` shows them, for one day,
each comparison's left side, its threshold and how far the left side was from
flipping it ("change(DGS10, 5) >= 0.20   -0.13   needs +0.33 more"), and for
an unknown, which series was missing and since when. Nothing is recomputed:
every number is read from the evaluation's memoized sub-expression arrays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from bot.engine import expr as E
from bot.engine.expr import unparse
from bot.engine.frame import MAX_CARRY
from bot.engine.functions import FUNCTIONS, N
from bot.engine.lifecycle import held_but_quiet

VERDICTS = ("fired", "cooldown", "pending_for", "active", "false", "unknown")

# --- readable text of a node (bot.engine.expr.unparse when the source text is lost) ---------

def _strip_parens(text: str) -> str:
    text = " ".join(text.split())
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for pos, char in enumerate(text):
            depth += char == "("
            depth -= char == ")"
            if depth == 0 and pos < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def source_texts(rule) -> dict[int, str]:
    """id(node) -> its text as the user wrote it, for the nodes of `rule.condition`.

    The rule's `when_text` is re-parsed; when it gives the same tree (a `when:` string, or an
    all:/any:/not: fold, whose text is '(a) and (b)'), each node's span is its source text.
    Otherwise (e.g. parameters substituted) the caller falls back to `unparse`.
    """
    text = getattr(rule, "when_text", "") or ""
    try:
        parsed = E.parse(text)
    except E.ExprError:
        return {}
    params = getattr(rule, "params", None)
    if params and hasattr(E, "substitute"):
        parsed = E.substitute(parsed, params)
    if parsed.key() != rule.condition.key():
        return {}
    out: dict[int, str] = {}

    def pair(ours, theirs):
        out[id(ours)] = _strip_parens(text[theirs.start:theirs.end])
        for a, b in zip(_children(ours), _children(theirs)):
            pair(a, b)

    pair(rule.condition, parsed)
    out[id(rule.condition)] = " ".join(text.split())
    return out


def _children(node):
    if isinstance(node, E.Call):
        return node.args
    if isinstance(node, E.Unary):
        return (node.operand,)
    if isinstance(node, E.Binary):
        return (node.left, node.right)
    return ()


# --- the explanation ----------------------------------------------------------------------

@dataclass(frozen=True)
class Missing:
    """A series that made a condition unknown on the session explained."""

    series: str
    reason: str  # e.g. "RSP has no data before 2003-05-01"
    last_value: date | None  # the last session with a real value on or before the day explained
    age: int | None  # sessions since that value (None: none yet)
    first_data: date | None  # the first session the series has data

    def to_json(self) -> dict:
        return {"series": self.series, "reason": self.reason,
                "last_value": self.last_value.isoformat() if self.last_value else None, "age": self.age,
                "first_data": self.first_data.isoformat() if self.first_data else None}


@dataclass
class ExplainNode:
    expr: str
    holds: bool | None  # None: unknown
    kind: str  # 'and' | 'or' | 'not' | 'compare' | 'leaf'
    value: float | None = None  # a comparison's left side; a leaf's own value
    threshold: float | None = None  # a comparison's right side
    margin: float | None = None  # to spare (positive) or short (negative), whatever the operator: see _margin()
    op: str | None = None
    children: list["ExplainNode"] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    note: str | None = None  # e.g. when the rule read by fired(...) last fired

    @property
    def move(self) -> float | None:
        """threshold - value: how far the left side must move to reach the threshold (the text's "needs")."""
        if self.value is None or self.threshold is None:
            return None
        return round(self.threshold - self.value, 4)

    def to_json(self) -> dict:
        out: dict = {"expr": self.expr, "holds": self.holds}
        if self.kind == "compare":
            out.update(value=self.value, threshold=self.threshold, margin=self.margin)
        elif self.kind == "leaf":
            out["value"] = self.value
        out["children"] = [c.to_json() for c in self.children]
        if self.missing:
            out["missing"] = [m.to_json() for m in self.missing]
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Explanation:
    rule: str
    date: date
    index: int  # session position in the frame
    fired: bool
    verdict: str  # one of VERDICTS
    condition: ExplainNode
    since: date | None = None  # cooldown: the firing it started from; active: the firing still active
    progress: tuple[int, int] | None = None  # pending_for: held k of the n sessions `for` needs
    last_fired_before: date | None = None
    next_fired_after: date | None = None
    missing: list[Missing] = field(default_factory=list)  # every series that made a part unknown
    note: str | None = None  # e.g. the date asked for was not a session
    revised: list[str] = field(default_factory=list)  # series read as revised values (bot.app.vintages)

    def to_json(self) -> dict:
        out = {"rule": self.rule, "date": self.date.isoformat(), "fired": self.fired, "verdict": self.verdict,
               "condition": self.condition.to_json()}
        if self.note:
            out["note"] = self.note
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.progress is not None:
            out["for"] = {"held": self.progress[0], "needs": self.progress[1]}
        out["last_fired_before"] = self.last_fired_before.isoformat() if self.last_fired_before else None
        out["next_fired_after"] = self.next_fired_after.isoformat() if self.next_fired_after else None
        if self.missing:
            out["missing"] = [m.to_json() for m in self.missing]
        if self.revised:
            out["revised"] = self.revised
        return out


def _r(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def _truth(x) -> bool | None:
    x = float(x)
    return None if np.isnan(x) else x == 1.0


def _is_logic(node) -> bool:
    return (isinstance(node, E.Binary) and node.op in ("and", "or")) or (isinstance(node, E.Unary)
                                                                          and node.op == "not")


def _chain(node, op):
    if isinstance(node, E.Binary) and node.op == op:
        return _chain(node.left, op) + _chain(node.right, op)
    return [node]


class _Explainer:
    def __init__(self, evaluation, rule, i):
        self.ev, self.rule, self.i = evaluation, rule, i
        self.frame = evaluation.frame
        self.context = evaluation.context
        self.texts = source_texts(rule)
        self.folded = rule.condition.end == 0  # all:/any:/not: nodes carry no source span

    def text(self, node):
        """As written for a `when:` string; for all:/any:/not: (folded, spans lost) the logic is rebuilt
        from its parts' texts with only the parentheses that help."""
        if self.folded and _is_logic(node):
            if isinstance(node, E.Unary):
                inner = self.text(node.operand)
                return f"not {inner}" if _is_logic(node.operand) and inner.startswith("(") else f"not ({inner})"
            parts = []
            for part in _chain(node, node.op):
                text = self.text(part)
                parts.append(f"({text})" if isinstance(part, E.Binary) and part.op in ("and", "or") else text)
            return f" {node.op} ".join(parts)
        return self.texts.get(id(node)) or unparse(node)

    def at(self, node) -> float:
        return float(self.context.eval(node)[self.i])

    def node(self, node) -> ExplainNode:
        if isinstance(node, E.Binary) and node.op in ("and", "or"):
            parts = _chain(node, node.op)
            return ExplainNode(self.text(node), _truth(self.at(node)), node.op,
                               children=[self.node(p) for p in parts])
        if isinstance(node, E.Unary) and node.op == "not":
            return ExplainNode(self.text(node), _truth(self.at(node)), "not", children=[self.node(node.operand)])
        holds = _truth(self.at(node))
        missing = self.missing(node) if holds is None else []
        if isinstance(node, E.Binary) and node.op in E.COMPARISONS:
            value, threshold = _r(self.at(node.left)), _r(self.at(node.right))
            margin = _margin(node.op, value, threshold)
            return ExplainNode(self.text(node), holds, "compare", value, threshold, margin, node.op,
                               missing=missing)
        note = self.fired_note(node) if isinstance(node, E.Call) and node.func == "fired" else None
        return ExplainNode(self.text(node), holds, "leaf", _r(self.at(node)), missing=missing, note=note)

    def fired_note(self, node) -> str | None:
        rid, n = node.args[0].rule_id, int(node.args[1].value)
        fires = self.ev.fires.get(rid)
        if fires is None:
            return None
        before = np.flatnonzero(fires[:self.i + 1])
        if not len(before):
            return f"{rid} had not fired yet"
        j = int(before[-1])
        when = self.frame.sessions[j].date()
        ago = self.i - j
        within = "within" if ago < n else "not within"
        return f"{rid} last fired {when}, {ago} session{'s' if ago != 1 else ''} before ({within} {n})"

    def missing(self, node) -> list[Missing]:
        """The series that made `node` unknown on session i, with the last session they had a value."""
        out = []
        for name, lookback in _lookbacks(node).items():
            found = self.why(name, lookback, node)
            if found is not None and all(m.series != name for m in out):
                out.append(found)
        return out

    def why(self, name, lookback, node) -> Missing | None:
        frame, i, sessions = self.frame, self.i, self.frame.sessions
        if name in frame.daily:
            values, age = frame.daily[name], frame.age[name]
            real = np.flatnonzero(age == 0)
            first = sessions[real[0]].date() if len(real) else None
            a = int(age[i])
            last = sessions[i - a].date() if a <= i else None
            a_out = a if a <= i else None
            if np.isnan(values[i]):
                if last is None:
                    reason = (f"{name} has no data before {first}" if first else f"{name} has no data")
                else:
                    reason = f"{name} has no value since {last} ({a} sessions; carried at most {MAX_CARRY})"
                return Missing(name, reason, last, a_out, first)
            start = max(0, i - lookback)
            gaps = np.flatnonzero(np.isnan(values[start:i + 1]))
            if lookback and (i - lookback < 0 or len(gaps)):
                if first is not None and (i - lookback < 0 or sessions[i - lookback].date() < first):
                    reason = f"{name} starts {first}; the window needs {lookback} sessions of it"
                else:
                    reason = f"{name} missing on {sessions[start + gaps[0]].date()}, inside the window"
                return Missing(name, reason, last, a_out, first)
            return None
        if name in frame.monthly:
            monthly = frame.monthly[name]
            known = np.flatnonzero(~np.isnan(monthly.value))
            first = sessions[known[0]].date() if len(known) else None
            if np.isnan(monthly.value[i]):
                reason = (f"{name} not yet released (first release in the data: {first})" if first
                          else f"{name} has no released value")
                return Missing(name, reason, None, None, first)
            calls = [n for n in E.walk(node) if isinstance(n, E.Call) and n.func in ("mom_pct", "yoy_pct")
                     and n.args[0].key() == name]
            for call in calls:
                if np.isnan(self.at(call)):
                    month = str(monthly.month[i])[:7]
                    what = "the month before" if call.func == "mom_pct" else "a year before"
                    return Missing(name, f"{name} has no value for {what} {month}", None, None, first)
        return None


def _lookbacks(node, reach: int = 0, out: dict | None = None) -> dict[str, int]:
    """Series name -> how many sessions back the node reads it (windows of enclosing calls summed)."""
    out = {} if out is None else out
    if isinstance(node, E.Name):
        out[node.name] = max(out.get(node.name, 0), reach)
    elif isinstance(node, E.Call):
        spec = FUNCTIONS.get(node.func)
        extra = 0
        if spec is not None:
            extra = sum(int(a.value) for a, p in zip(node.args, spec.params) if p == N and isinstance(a, E.Num))
            if node.func in ("crossed_above", "crossed_below"):
                extra = 1
        for arg in node.args:
            _lookbacks(arg, reach + extra, out)
    else:
        for child in _children(node):
            _lookbacks(child, reach, out)
    return out


def _verdict(evaluation, rule, i) -> tuple[str, date | None, tuple[int, int] | None]:
    fires = evaluation.fires[rule.id]
    holds = evaluation.holds[rule.id]
    sessions = evaluation.frame.sessions
    if fires[i]:
        return "fired", None, None
    h = float(holds[i])
    if np.isnan(h):
        return "unknown", None, None
    if h != 1.0:
        return "false", None, None
    n = int(getattr(rule, "for_sessions", 1) or 1)
    why = held_but_quiet(holds, fires, evaluation.active[rule.id], i, n, rule.cooldown)  # as `check` says it
    if why is not None:
        kind, k = why
        return ("pending_for", None, (k, n)) if kind == "for" else (kind, sessions[k].date(), None)
    # held, not fired, not blocked: the session it resolved on (a `clear_when` that holds with the condition)
    earlier = np.flatnonzero(fires[:i])
    return ("cooldown", sessions[earlier[-1]].date(), None) if len(earlier) else ("false", None, None)


def explain(evaluation, rule, i: int) -> Explanation:
    """Why `rule` (a Rule or its id) did or did not fire on session position `i` of the evaluation."""
    if isinstance(rule, str):
        rule = evaluation.rule(rule)
    n = len(evaluation.frame)
    if not -n <= i < n:
        raise IndexError(f"session {i} is outside the data ({n} sessions)")
    i = i % n
    explainer = _Explainer(evaluation, rule, i)
    tree = explainer.node(rule.condition)
    root_holds = _truth(evaluation.holds[rule.id][i])
    if tree.holds != root_holds:  # the tree and the verdict read the same arrays; keep them in step
        tree = dataclasses.replace(tree, holds=root_holds)
    verdict, since, progress = _verdict(evaluation, rule, i)
    fired_idx = np.flatnonzero(evaluation.fires[rule.id])
    before = fired_idx[fired_idx < i]
    after = fired_idx[fired_idx > i]
    sessions = evaluation.frame.sessions
    missing: list[Missing] = []

    def unknown_because(node: ExplainNode):  # only the unknown parts that made the whole unknown
        if node.holds is not None:
            return
        for m in node.missing:
            if all(x.series != m.series for x in missing):
                missing.append(m)
        for child in node.children:
            unknown_because(child)

    unknown_because(tree)
    return Explanation(
        rule=rule.id, date=sessions[i].date(), index=i, fired=bool(evaluation.fires[rule.id][i]),
        verdict=verdict, condition=tree, since=since, progress=progress,
        last_fired_before=sessions[before[-1]].date() if len(before) else None,
        next_fired_after=sessions[after[0]].date() if len(after) else None,
        missing=missing)


def closest_session(evaluation, rule, lo: int, hi: int) -> int:
    """The session in [lo, hi] where the rule came closest to firing, to point `explain` at.

    Ranked by: the condition held (blocked by cooldown or `for`); then the most of its atoms true;
    then the smallest shortfall of its false comparisons, each in standard deviations of its left side.
    """
    if isinstance(rule, str):
        rule = evaluation.rule(rule)
    context = evaluation.context
    held = evaluation.holds[rule.id][lo:hi + 1] == 1.0
    true_count = np.zeros(hi - lo + 1)
    shortfall = np.zeros(hi - lo + 1)
    for atom in E.atoms(rule.condition):
        values = context.eval(atom)[lo:hi + 1]
        true_count += values == 1.0
        if isinstance(atom, E.Binary) and atom.op in E.COMPARISONS:
            left = context.eval(atom.left)
            right = context.eval(atom.right)[lo:hi + 1]
            scale = np.nanstd(left) if np.isfinite(left).any() else 1.0
            gap = np.abs(right - left[lo:hi + 1]) / (scale or 1.0)
            shortfall += np.where(values == 0.0, np.nan_to_num(gap, nan=1e6), 0.0)
    order = np.lexsort((np.arange(hi - lo + 1), -shortfall, true_count, held))
    return lo + int(order[-1])


def _margin(op: str, value: float | None, threshold: float | None) -> float | None:
    """One meaning for every operator: positive = to spare (how far the value may move the wrong way before
    the comparison stops holding), negative = short (how far it is from holding), 0 = at the edge.

    `>=`/`>`: value - threshold; `<=`/`<`: threshold - value; `==`: 0 when equal, else -|value - threshold|;
    `!=`: |value - threshold| (0 when equal, and then it does not hold). A reader of `explain --json` can so
    rank sub-conditions by margin without knowing their operators (issue 17: `<=` read "to spare" and `>=`
    "short" under the old threshold - value).
    """
    if value is None or threshold is None:
        return None
    gap = value - threshold
    margin = {">=": gap, ">": gap, "<=": -gap, "<": -gap, "==": -abs(gap), "!=": abs(gap)}[op]
    return round(margin, 4) + 0.0  # + 0.0: never -0.0 in JSON

