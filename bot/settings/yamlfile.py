"""Read YAML while remembering where every key and value stood.

PyYAML forgets positions once it builds Python objects, and validation libraries
report paths like ``rules.0.cooldown``. Users edit the file, so every message
must say ``config/rules.yaml:12:5``. This module keeps a map from each path to
its line and column, and turns pydantic's errors into such messages, with a
did-you-mean where a name is close to a valid one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.settings.paths import MAX_CONFIG_BYTES, read_small
from bot.suggest import did_you_mean

MAX_BYTES = MAX_CONFIG_BYTES  # a rules file is hand-written; anything larger is a mistake


@dataclass(frozen=True, order=True)
class Problem:
    """One finding in a file, printed the way compilers and linters do."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class Document:
    """A parsed YAML file: its plain Python data plus the position of every path in it."""

    def __init__(self, path: str, data: Any, values: dict, keys: dict, styles: dict | None = None,
                 lines: list[str] | None = None):
        self.path = path
        self.data = data
        self._values = values  # path tuple -> (line, col) of the value
        self._keys = keys  # path tuple -> (line, col) of the mapping key naming it
        self._styles = styles or {}  # path tuple -> scalar style: None (plain), "'", '"', '|', '>'
        self.lines = lines or []

    def text_position(self, path: tuple, text: str, offset: int) -> tuple[int, int]:
        """Line and column of character `offset` of the string scalar at `path`.

        Exact for plain and quoted scalars on one line; for block scalars ('|', '>')
        the line holding the text around the offset is found in the source.
        """
        line, col = self.position(path)
        style = self._styles.get(tuple(path))
        if path in self._values and style in (None, "", "'", '"') and "\n" not in text:
            return line, col + offset + (1 if style in ("'", '"') else 0)
        probe = text[offset:offset + 12].split("\n")[0].strip()
        if probe:
            for number in range(line, min(line + text.count("\n") + 40, len(self.lines)) + 1):
                found = self.lines[number - 1].find(probe, 0 if number > line else col - 1)
                if found >= 0:
                    return number, found + 1
        return line, col

    def text_problem(self, path: tuple, text: str, offset: int, message: str) -> "Problem":
        line, col = self.text_position(path, text, offset)
        return Problem(self.path, line, col, message)

    def position(self, path: tuple, prefer_key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of `path`, or of its nearest known ancestor."""
        path = tuple(path)
        while True:
            if prefer_key and path in self._keys:
                return self._keys[path]
            if path in self._values:
                return self._values[path]
            if not path:
                return (1, 1)
            path = path[:-1]
            prefer_key = False

    def problem(self, path: tuple, message: str, prefer_key: bool = False) -> Problem:
        line, col = self.position(path, prefer_key)
        return Problem(self.path, line, col, message)

    def resolve(self, loc: tuple) -> tuple:
        """The part of a pydantic location that exists in the file.

        Parts that are not in the data (union tags such as 'str', an absent key)
        are skipped, so the position falls on the nearest thing the user wrote.
        """
        out: list = []
        node = self.data
        for part in loc:
            if isinstance(node, dict) and part in node:
                out.append(part)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                out.append(part)
                node = node[part]
        return tuple(out)


def _mark(node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node, path, values, keys, problems, filename, styles):
    values[path] = _mark(node)
    if isinstance(node, yaml.ScalarNode):
        styles[path] = node.style or None  # libyaml reports a plain scalar's style as '', PyYAML as None
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if isinstance(key_node, yaml.ScalarNode) and key in seen:
                line, col = _mark(key_node)
                problems.append(Problem(filename, line, col,
                                        f"'{key}' appears twice in this mapping (first on line {seen[key]}); "
                                        "keep one"))
            seen[key] = _mark(key_node)[0]
            keys[path + (key,)] = _mark(key_node)
            _walk(value_node, path + (key,), values, keys, problems, filename, styles)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), values, keys, problems, filename, styles)


def load(path: str | Path, display: str | None = None, constructors: tuple = ()) -> Document:
    """Parse one YAML file; raise ConfigError naming file:line:col for anything YAML rejects.

    `constructors`: see `loads`."""
    path = Path(path)
    name = display or str(path)
    try:
        raw = read_small(path, MAX_BYTES)  # refuses /dev/zero, a FIFO, a 1.5 GB sparse file before reading
    except FileNotFoundError:
        raise ConfigError([Problem(name, 1, 1, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, 1, 1, f"cannot read: {exc.strerror}")]) from None
    except ValueError as exc:
        raise ConfigError([Problem(name, 1, 1, str(exc))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(name, 1, 1, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]) \
            from None
    return loads(text, name, constructors)


def loads(text: str, name: str = "<string>", constructors: tuple = ()) -> Document:
    """Parse YAML text once: compose the node graph (libyaml when it is safe, see `compose`), refuse alias
    bombs, then build the data and the map of positions from that one graph.

    `constructors` are extra PyYAML constructor classes tried in turn when the safe one raises ValueError
    (a date such as 2024-13-01 that PyYAML cannot build): rules_tests_file passes one that keeps dates as
    text, so the bad date is reported at its line by the file's own checks. The last ValueError propagates.
    """
    try:
        node = compose(text)
        if node is not None:
            _refuse_alias_bombs(node, text, name)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(exc, text, name)]) from None
    except RecursionError:
        raise ConfigError([Problem(name, 1, 1, "YAML nested too deeply")]) from None
    data = None
    if node is not None:
        choices = (yaml.constructor.SafeConstructor, *constructors)
        for i, constructor in enumerate(choices):
            try:
                data = constructor().construct_document(node)
                break
            except ValueError:
                if i == len(choices) - 1:
                    raise
            except yaml.YAMLError as exc:  # an unknown tag (!!python/object)
                raise ConfigError([_syntax_problem(exc, text, name)]) from None
            except RecursionError:
                raise ConfigError([Problem(name, 1, 1, "YAML nested too deeply")]) from None
    values: dict = {}
    keys: dict = {}
    styles: dict = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), values, keys, problems, name, styles)
    if problems:
        raise ConfigError(sorted(problems))
    return Document(name, data, values, keys, styles, text.splitlines())


def _syntax_problem(exc: yaml.YAMLError, text: str, name: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        return Problem(name, line, col, f"YAML syntax: {what}{_yaml_hint(text, line, what)}")
    return Problem(name, 1, 1, f"YAML syntax: {exc}")


# -- composing: libyaml when it is safe, pure Python to word an error ---------------------------------

_FAST_LOADER = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml: ~12x faster to compose
MAX_FAST_DEPTH = 300  # collections nested; deeper files are composed by PyYAML's own parser, as always
_LEADING = re.compile(r"^[ \t?:-]*", re.MULTILINE)


def compose(text: str):
    """The node graph of `text` (None for an empty document); raises yaml.YAMLError as PyYAML words it.

    libyaml (yaml.CSafeLoader) composes the graph; PyYAML's pure-Python parser
    runs only when libyaml rejects the text, so that a syntax error is reported
    word for word as it always was (libyaml words them differently), and for a
    file nested deeper than MAX_FAST_DEPTH: libyaml's composer recurses in C,
    where `[` * 100,000 overflows the stack and kills the process instead of
    raising, while PyYAML's raises RecursionError ("YAML nested too deeply").
    """
    if _FAST_LOADER is not None and _depth_at_most(text, MAX_FAST_DEPTH):
        loader = _FAST_LOADER(text)
        try:
            return loader.get_single_node()
        except yaml.YAMLError:
            pass  # say what PyYAML says, below
        finally:
            loader.dispose()
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _depth_at_most(text: str, limit: int) -> bool:
    """Whether `text` nests at most `limit` collections, decided without recursion.

    First a bound from the text alone: a flow collection needs an opening `[`
    or `{`, and a block collection starts in the run of indentation and
    indicators (`- `, `? `, `: `) that begins its line, or at the first key
    after it, each nested one to the right of its parent except a sequence
    under a mapping key (hence twice the run). Only when that bound is over the
    limit are libyaml's events counted (iteratively, in C).
    """
    bound = text.count("[") + text.count("{") + 2 * (max(map(len, _LEADING.findall(text)), default=0) + 1) + 1
    if bound <= limit:
        return True
    depth = 0
    loader = _FAST_LOADER(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return False  # PyYAML words the error
    finally:
        loader.dispose()
    return True


MAX_ALIAS_GROWTH = 10_000  # values that aliases may add to a file, beyond those written in it


def _refuse_alias_bombs(root, text: str, name: str) -> None:
    """Refuse a file whose aliases (`*name`) expand it far beyond what is written, or loop back.

    PyYAML shares the node an alias points to, so composing costs nothing; it is every walk
    over the data afterwards (positions, validation, the rules themselves) that pays for the
    expansion: nine levels of nine aliases ("billion laughs") are 10^9 values. Measured on the
    node graph, with each shared node counted once per time it is reached, before anything is
    built from it.
    """
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:  # an alias inside the value it names
            line, col = _first_alias(text)
            raise ConfigError([Problem(name, line, col, "an alias ('*name') refers to the value that contains it; "
                                                        "write the value out instead")])
        busy.add(key)
        children = (node.value if isinstance(node, yaml.SequenceNode)
                    else [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        total = 1
        for child in children:
            total += size(child)
            if total > 10**12:
                break
        busy.discard(key)
        sizes[key] = total
        return total

    try:
        expanded = size(root)
    except RecursionError:
        raise ConfigError([Problem(name, 1, 1, "YAML nested too deeply")]) from None
    if expanded - len(sizes) > MAX_ALIAS_GROWTH:
        line, col = _first_alias(text)
        raise ConfigError([Problem(name, line, col, f"anchors and aliases ('&name', '*name') expand this file to "
                                                    f"{expanded:,} values from {len(sizes):,} written; at most "
                                                    f"{MAX_ALIAS_GROWTH:,} may be added this way. Write the values "
                                                    "out in full instead of repeating them through aliases")])


def _first_alias(text: str) -> tuple[int, int]:
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            return event.start_mark.line + 1, event.start_mark.column + 1
    return 1, 1


def _yaml_hint(text: str, line: int, what: str) -> str:
    lines = text.splitlines()
    if "\t" in text and ("tab" in what or "found character" in what):
        return " (indent with spaces, not tabs)"
    if "mapping values are not allowed" in what:
        return " (a value containing ': ' must be quoted, e.g. title: \"Rates: up\")"
    if "could not find expected ':'" in what or "expected <block end>" in what:
        return " (check the indentation of this line against the one above)"
    if 0 < line <= len(lines) and lines[line - 1].lstrip().startswith("{"):
        return " (a value starting with '{' must be quoted)"
    return ""


def validation_problems(doc: Document, error, models_by_depth=None, prefix: tuple = ()) -> list[Problem]:
    """Turn a pydantic ValidationError into Problems at file:line:col.

    `models_by_depth` is a callable mapping a location to the model class found
    there, so an unknown field can list the valid ones.
    """
    problems = []
    errors = error.errors(include_url=False)
    missing = {(tuple(prefix) + tuple(e["loc"][:-1]), e["loc"][-1]) for e in errors if e["type"] == "missing"}
    explained = set()  # missing fields that an unknown field's did-you-mean already points at
    for err in errors:
        loc = tuple(prefix) + tuple(err["loc"])
        kind = err["type"]
        path = doc.resolve(loc)
        if kind == "extra_forbidden":
            field = path[-1] if path else loc[-1]
            allowed = models_by_depth(path[:-1]) if models_by_depth else []
            hint = did_you_mean(field, allowed) if allowed else ""
            valid = f" (valid here: {', '.join(allowed)})" if allowed and not hint else ""
            for parent, name in missing:
                if parent == loc[:-1] and hint == did_you_mean(field, [name]) and hint:
                    explained.add((parent, name))
            problems.append(doc.problem(path, f"unknown field '{field}'{hint}{valid}", prefer_key=True))
    for err in errors:
        loc = tuple(prefix) + tuple(err["loc"])
        kind = err["type"]
        path = doc.resolve(loc)
        if kind == "extra_forbidden":
            continue
        if kind == "missing":
            field = loc[-1]
            if (loc[:-1], field) not in explained:
                problems.append(doc.problem(path, f"missing field '{field}'"))
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            field = next((p for p in reversed(path) if isinstance(p, str)), None)
            where = f"'{field}': " if field and not msg.startswith(f"'{field}'") else ""
            got = err.get("input")
            shown = ""
            if kind not in ("value_error", "assertion_error") and not isinstance(got, (dict, list)):
                shown = f" (got {got!r})"
            problems.append(doc.problem(path, f"{where}{msg}{shown}"))
    return problems
