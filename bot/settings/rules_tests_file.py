"""The golden-episode tests file (`config/rules.test.yaml`) as typed expectations, every mistake at file:line:col.

```yaml
tests:
  - rule: small-cap-trap
    fires_within: [2024-07-15, 2024-07-19]   # at least one firing in this window
    quiet_within: [2024-06-01, 2024-07-12]   # no firing in this window
  - rule: soft-cpi-rotation
    fires: [2024-07-11]                      # fires on each of these sessions
    quiet: [2024-08-14]                      # fires on none of these
  - rule: small-cap-trap
    at_most_per_year: 6                      # average firings per year
    from: 2008-01-01                         # optional: the span a rate is measured over
```

Like the rules file, every problem is collected before raising, so one run
lists them all: an unknown rule id (with a did-you-mean), a date that is not a
date, an unknown key, a window whose end comes before its start. Checking is
`bot.engine.expectations.check_expectations`.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Iterable

import yaml

from bot.engine.expectations import KINDS, Expectation
from bot.errors import ConfigError
from bot.settings import yamlfile
from bot.settings.paths import out_of_range
from bot.settings.yamlfile import Problem
from bot.suggest import did_you_mean

KEYS = ("rule", *KINDS, "from", "to")
_EXAMPLE = {
    "fires_within": "fires_within: [2024-07-15, 2024-07-19]",
    "quiet_within": "quiet_within: [2024-06-01, 2024-07-12]",
    "fires": "fires: [2024-07-11]",
    "quiet": "quiet: [2024-08-14]",
    "at_most_per_year": "at_most_per_year: 6",
    "at_least_per_year": "at_least_per_year: 1",
}


def rules_tests_path(rules_path) -> Path:
    """Where the tests for a rules file live: `rules.yaml` -> `rules.test.yaml` beside it."""
    path = Path(rules_path)
    return path.with_name(f"{path.stem}.test{path.suffix or '.yaml'}")


def load_tests(path, rules, display: str | None = None) -> list[Expectation]:
    """Read and check a tests file against `rules` (Rule objects or ids); raise ConfigError listing every
    problem."""
    return parse_tests(yamlfile.load(path, display, constructors=(_DatesAsText,)), rules)


def loads_tests(text: str, rules, name: str = "rules.test.yaml") -> list[Expectation]:
    return parse_tests(yamlfile.loads(text, name, constructors=(_DatesAsText,)), rules)


class _DatesAsText(yaml.constructor.SafeConstructor):
    """Builds dates as the text written, for a file holding one PyYAML cannot build (2024-13-01): the
    bad date is then a problem at its line (see `_date`), not a crash. Used on the same parsed nodes,
    only when the safe constructor fails."""

    def construct_yaml_timestamp(self, node):
        return self.construct_scalar(node)


_DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", _DatesAsText.construct_yaml_timestamp)


def _ids(rules: Iterable) -> list[str]:
    return [r if isinstance(r, str) else r.id for r in rules]


def _date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


class _Parser:
    def __init__(self, doc: yamlfile.Document, rule_ids: list[str]):
        self.doc, self.ids, self.problems = doc, rule_ids, []

    def fail(self, path, message, prefer_key=False):
        self.problems.append(self.doc.problem(path, message, prefer_key=prefer_key))

    def date_at(self, path, value, what) -> date | None:
        found = _date(value)
        if found is None:
            shown = "nothing" if value is None else repr(value)
            self.fail(path, f"{what}: {shown} is not a date; write YYYY-MM-DD, e.g. 2024-07-15")
        elif out_of_range(found):
            self.fail(path, f"{what}: {out_of_range(found)}")
            return None
        return found

    def dates(self, path, value, key) -> tuple[date, ...] | None:
        if not isinstance(value, list) or not value:
            self.fail(path, f"'{key}' takes a list of dates, e.g. {_EXAMPLE[key]}")
            return None
        found = [self.date_at(path + (j,), v, key) for j, v in enumerate(value)]
        return tuple(found) if all(d is not None for d in found) else None

    def window(self, path, value, key) -> tuple[date, date] | None:
        if not isinstance(value, list) or len(value) != 2:
            got = f"{len(value)} item{'s' if len(value) != 1 else ''}" if isinstance(value, list) else repr(value)
            self.fail(path, f"'{key}' takes two dates [from, to], e.g. {_EXAMPLE[key]}; got {got}")
            return None
        start, end = (self.date_at(path + (j,), v, key) for j, v in enumerate(value))
        if start is None or end is None:
            return None
        if start > end:
            self.fail(path + (1,), f"'{key}' ends ({end}) before it starts ({start}); write [from, to]")
            return None
        return start, end

    def rate(self, path, value, key) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
            self.fail(path, f"'{key}' takes a number of firings per year (0 or more), e.g. {_EXAMPLE[key]}; "
                            f"got {value!r}")
            return None
        return float(value)

    def item(self, i, item) -> list[Expectation]:
        base = ("tests", i)
        if not isinstance(item, dict):
            self.fail(base, f"each test is a mapping with 'rule:' and an expectation, e.g. "
                            f"'- rule: small-cap-trap' then '  {_EXAMPLE['fires_within']}'; found "
                            f"{type(item).__name__ if item is not None else 'nothing'}")
            return []
        for key in item:
            if key not in KEYS:
                hint = did_you_mean(key, KEYS)
                valid = "" if hint else f" (valid here: {', '.join(KEYS)})"
                self.fail(base + (key,), f"unknown key '{key}'{hint}{valid}", prefer_key=True)
        rule = item.get("rule")
        rule_ok = False
        if "rule" not in item:
            self.fail(base, "missing 'rule:' (the id of the rule this test is about)")
        elif not isinstance(rule, str):
            self.fail(base + ("rule",), f"'rule' takes a rule id, e.g. small-cap-trap; got {rule!r}")
        elif rule not in self.ids:
            self.fail(base + ("rule",), f"no rule with id '{rule}'{did_you_mean(rule, self.ids)} "
                                        f"(rules: {', '.join(self.ids) or 'none'})")
        else:
            rule_ok = True
        kinds = [k for k in item if k in KINDS]  # in the order the file gives them
        if not kinds:
            if not any(k not in KEYS for k in item):  # an unknown key already says what is wrong
                self.fail(base, f"no expectation; add one of {', '.join(KINDS)}, e.g. {_EXAMPLE['fires_within']}")
            return []
        start = self.date_at(base + ("from",), item["from"], "from") if "from" in item else None
        end = self.date_at(base + ("to",), item["to"], "to") if "to" in item else None
        if start and end and start > end:
            self.fail(base + ("to",), f"'to' ({end}) is before 'from' ({start})")
        out = []
        for kind in kinds:
            path = base + (kind,)
            line, col = self.doc.position(path, prefer_key=True)
            value = item[kind]
            dates, limit = (), None
            if kind.endswith("_within"):
                dates = self.window(path, value, kind)
            elif kind in ("fires", "quiet"):
                dates = self.dates(path, value, kind)
            else:
                limit = self.rate(path, value, kind)
            if dates is None or (kind.endswith("_per_year") and limit is None) or not rule_ok:
                continue
            out.append(Expectation(rule, kind, tuple(dates), limit, start, end, self.doc.path, line, col))
        return out

    def parse(self) -> list[Expectation]:
        data = self.doc.data
        if not isinstance(data, dict) or "tests" not in data:
            found = "an empty file" if data is None else (
                f"keys {', '.join(map(str, data))}" if isinstance(data, dict) else type(data).__name__)
            raise ConfigError([self.doc.problem((), f"expected a mapping with a 'tests:' list; found {found}")])
        for key in data:
            if key != "tests":
                self.fail((key,), f"unknown key '{key}'{did_you_mean(key, ['tests'])} (the file holds 'tests:' "
                                  "only)", prefer_key=True)
        tests = data["tests"]
        if not isinstance(tests, list):
            self.fail(("tests",), "'tests' takes a list, one '- rule: ...' item per test")
            tests = []
        out = [e for i, item in enumerate(tests) for e in self.item(i, item)]
        if self.problems:
            raise ConfigError(sorted(set(self.problems)))
        return out


def parse_tests(doc: yamlfile.Document, rules) -> list[Expectation]:
    return _Parser(doc, _ids(rules)).parse()


__all__ = ["load_tests", "loads_tests", "parse_tests", "rules_tests_path", "Problem"]
