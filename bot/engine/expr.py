"""The rule expression language: a tokenizer and Pratt parser of our own grammar.

Users write `pct_change(IWM, 5) >= 3 and change(DGS10, 5) >= 0.05`. Nothing
they write is ever handed to `eval`: the grammar has numbers, names, calls,
`+ - * /`, comparisons, `and or not` and parentheses, and nothing else, so
attribute access, strings, lambdas and imports cannot even be spelled. Limits
on length, depth and size refuse hostile input at validation time.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from bot.errors import ExprError

MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_NODES = 400


@dataclass(frozen=True)
class Token:
    kind: str  # num, name, op, end
    text: str
    start: int
    end: int


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|,)
""", re.VERBOSE)

_HINTS = {
    "=": "use == to compare, or >= / <=",
    "'": "strings are not part of rule expressions; name series bare, e.g. IWM",
    '"': "strings are not part of rule expressions; name series bare, e.g. IWM",
    ".": "attribute access is not allowed; call a function, e.g. pct_change(IWM, 5)",
    "%": "write percentages as numbers: pct_change(IWM, 5) >= 3 means +3%",
    "&": "write 'and'",
    "|": "write 'or'",
    "!": "write 'not'",
    "[": "indexing is not allowed; use lag(x, n) for a past value",
    ":": "a ':' belongs in message templates only, as {expr:format}",
}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}", MAX_LENGTH)
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            char = text[pos]
            hint = _HINTS.get(char)
            if char == "." and tokens and tokens[-1].kind in ("name", "op") and tokens[-1].text != ")":
                hint = _HINTS["."]
            raise ExprError(f"unexpected character {char!r}" + (f": {hint}" if hint else ""), pos)
        kind = match.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos, match.end()))
        pos = match.end()
    tokens.append(Token("end", "", len(text), len(text)))
    return tokens


# --- the syntax tree -------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    start: int = field(compare=False)
    end: int = field(compare=False)

    def key(self) -> str:
        """A canonical spelling: equal keys compute equal arrays, so results are shared."""
        raise NotImplementedError


@dataclass(frozen=True)
class Num(Node):
    value: float = 0.0

    def key(self):
        return str(int(self.value)) if self.value == int(self.value) and abs(self.value) < 1e15 else repr(self.value)


@dataclass(frozen=True)
class Param(Num):
    """A rule parameter bound to its value (`params: {rally: 4}` turns `rally` into Param(4, 'rally')).

    It evaluates and is keyed as the number, so two rules (or two sweep values) with different
    values never share a computed result, and equal values do.
    """

    name: str = ""


@dataclass(frozen=True)
class Name(Node):
    name: str = ""

    def key(self):
        return self.name


@dataclass(frozen=True)
class Call(Node):
    func: str = ""
    args: tuple = ()

    def key(self):
        return f"{self.func}({', '.join(a.key() for a in self.args)})"


@dataclass(frozen=True)
class RuleRef(Node):
    """A rule id inside fired(...): letters, digits, '-' and '_', written bare."""

    rule_id: str = ""

    def key(self):
        return self.rule_id


@dataclass(frozen=True)
class Unary(Node):
    op: str = ""  # '-' or 'not'
    operand: Node = None

    def key(self):
        return f"({self.op} {self.operand.key()})"


@dataclass(frozen=True)
class Binary(Node):
    op: str = ""  # + - * / < <= > >= == != and or
    left: Node = None
    right: Node = None

    def key(self):
        return f"({self.left.key()} {self.op} {self.right.key()})"


COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_BINDING = {"or": 1, "and": 2, **{op: 4 for op in COMPARISONS}, "+": 5, "-": 5, "*": 6, "/": 6}
_NOT_BINDING = 3
_NEG_BINDING = 7
_RESERVED = {"and", "or", "not"}
_PYTHON_WORDS = {"lambda", "import", "def", "class", "exec", "eval", "open", "for", "in", "is", "if", "else",
                 "True", "False", "None", "true", "false", "yield", "await", "global", "with", "del"}
RESERVED_WORDS = frozenset(_RESERVED | _PYTHON_WORDS)  # never a series or parameter name


class Parser:
    def __init__(self, text: str, rule_ref_funcs=("fired",)):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.nodes = 0
        self.rule_ref_funcs = rule_ref_funcs

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        if self.tok.text != text:
            found = f"'{self.tok.text}'" if self.tok.kind != "end" else "the end"
            raise ExprError(f"expected '{text}' but found {found}", self.tok.start)
        return self.advance()

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError("empty expression", 0)
        node = self.expression(0)
        if self.tok.kind != "end":
            hint = ""
            if self.tok.kind in ("num", "name") or self.tok.text == "(":
                hint = ": an operator (and, or, +, >=, ...) or ',' is missing before it"
            raise ExprError(f"unexpected '{self.tok.text}'{hint}", self.tok.start)
        return node

    def _count(self):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExprError(f"expression has more than {MAX_NODES} parts; split it into several rules and "
                            "combine them with fired(...)", self.tok.start)

    def expression(self, min_binding: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested more than {MAX_DEPTH} levels deep", self.tok.start)
        left = self.prefix()
        while True:
            op = self.tok.text if self.tok.kind in ("op", "name") else None
            binding = _BINDING.get(op)
            if binding is None or binding <= min_binding:
                break
            self.advance()
            right = self.expression(binding)
            if op in COMPARISONS and self.tok.text in COMPARISONS:
                raise ExprError("chained comparisons are ambiguous; write 'a < x and x < b'", self.tok.start)
            self._count()
            left = Binary(left.start, right.end, op, left, right)
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            self._count()
            return Num(tok.start, tok.end, float(tok.text))
        if tok.text == "(":
            self.advance()
            inner = self.expression(0)
            close = self.expect(")")
            return _span(inner, tok.start, close.end)
        if tok.text == "-":
            self.advance()
            operand = self.expression(_NEG_BINDING)
            self._count()
            return Unary(tok.start, operand.end, "-", operand)
        if tok.text == "+":
            self.advance()
            return self.expression(_NEG_BINDING)
        if tok.text == "not":
            self.advance()
            operand = self.expression(_NOT_BINDING)
            self._count()
            return Unary(tok.start, operand.end, "not", operand)
        if tok.kind == "name":
            if tok.text in _RESERVED:
                raise ExprError(f"'{tok.text}' needs a condition on its left", tok.start)
            if tok.text in _PYTHON_WORDS:
                raise ExprError(f"'{tok.text}' is not part of rule expressions", tok.start)
            if tok.text.startswith("__"):
                raise ExprError("names starting with '__' are not allowed", tok.start)
            self.advance()
            self._count()
            if self.tok.text == "(":
                return self.call(tok)
            return Name(tok.start, tok.end, tok.text)
        if tok.kind == "end":
            raise ExprError("expression ends too early: a value is missing", tok.start)
        raise ExprError(f"unexpected '{tok.text}'", tok.start)

    def call(self, name_tok: Token) -> Node:
        self.expect("(")
        args = []
        if self.tok.text != ")":
            while True:
                if name_tok.text in self.rule_ref_funcs and not args:
                    args.append(self.rule_ref())
                else:
                    args.append(self.expression(0))
                if self.tok.text == ",":
                    self.advance()
                    continue
                break
        close = self.expect(")")
        return Call(name_tok.start, close.end, name_tok.text, tuple(args))

    def rule_ref(self) -> Node:
        """Join adjacent name, number and '-' tokens: fired(small-cap-trap, 10)."""
        first = self.tok
        if first.kind not in ("name", "num"):
            raise ExprError("fired(...) takes a rule id first, e.g. fired(small-cap-trap, 10)", first.start)
        end = first.end
        self.advance()
        while self.tok.start == end and (self.tok.kind in ("name", "num") or self.tok.text == "-"):
            end = self.advance().end
        return RuleRef(first.start, end, self.text[first.start:end])


def _span(node: Node, start: int, end: int) -> Node:
    """The same node, its span widened to include the parentheses around it."""
    return dataclasses.replace(node, start=start, end=end)


def parse(text: str) -> Node:
    return Parser(text).parse()


def walk(node: Node):
    yield node
    if isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, Binary):
        yield from walk(node.left)
        yield from walk(node.right)


def atoms(node: Node) -> list[Node]:
    """The conditions joined by and/or/not: comparisons and true/false calls, each once."""
    if isinstance(node, Binary) and node.op in ("and", "or"):
        return atoms(node.left) + atoms(node.right)
    if isinstance(node, Unary) and node.op == "not":
        return atoms(node.operand)
    return [node]


def substitute(node: Node, values) -> Node:
    """The tree with every parameter name (a Name or an already bound Param) in `values` bound to its value."""
    if isinstance(node, Param):
        return Param(node.start, node.end, float(values[node.name]), node.name) if node.name in values else node
    if isinstance(node, Name):
        return Param(node.start, node.end, float(values[node.name]), node.name) if node.name in values else node
    if isinstance(node, Call):
        return Call(node.start, node.end, node.func, tuple(substitute(a, values) for a in node.args))
    if isinstance(node, Unary):
        return Unary(node.start, node.end, node.op, substitute(node.operand, values))
    if isinstance(node, Binary):
        return Binary(node.start, node.end, node.op, substitute(node.left, values), substitute(node.right, values))
    return node


def unparse(node: Node, context: int = 0) -> str:
    """Readable text of an expression with only the parentheses it needs (all:/any: lose the source)."""
    if getattr(node, "name", None) and isinstance(node, Num):  # a bound parameter: as written
        return node.name
    if isinstance(node, Num):
        return node.key()
    if isinstance(node, Name):
        return node.name
    if isinstance(node, RuleRef):
        return node.rule_id
    if isinstance(node, Call):
        return f"{node.func}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, Unary):
        binding = _NOT_BINDING if node.op == "not" else _NEG_BINDING
        text = f"not {unparse(node.operand, binding)}" if node.op == "not" else f"-{unparse(node.operand, binding)}"
    elif isinstance(node, Binary):
        binding = _BINDING[node.op]
        right = binding + 1  # left-associative; comparisons do not chain
        left = binding + 1 if node.op in COMPARISONS else binding
        text = f"{unparse(node.left, left)} {node.op} {unparse(node.right, right)}"
    else:
        return node.key()
    return f"({text})" if binding < context else text


@dataclass(frozen=True)
class Word:
    """A name found in text that does not parse: `called` when '(' follows it."""

    text: str
    start: int
    called: bool


def words(text: str, rule_ref_funcs=("fired",)) -> list[Word]:
    """Every name in `text`, read past characters the tokenizer refuses.

    After a syntax error the parse tree is lost, but the names are not: reporting the
    unknown ones too lets a user fix every mistake of an expression in one go. Rule ids
    inside fired(...) are skipped (they may contain '-').
    """
    found: list[Word] = []
    pos, skip_rule_ref = 0, False
    text = text[:MAX_LENGTH]
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            pos += 1
            continue
        kind, value = match.lastgroup, match.group()
        pos = match.end()
        if skip_rule_ref:
            if value in (",", ")"):
                skip_rule_ref = False
            continue
        if kind != "name":
            continue
        rest = text[pos:].lstrip()
        called = rest.startswith("(")
        found.append(Word(value, match.start(), called))
        if called and value in rule_ref_funcs:
            pos = pos + (len(text[pos:]) - len(rest)) + 1
            skip_rule_ref = True
    return found

