"""Every mistake in the rules file gets a precise message at file:line:col, and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.settings.rules_file import json_schema, loads_rules
from bot.errors import ConfigError
from tests.conftest import ROOT, subprocess_env


@pytest.fixture(scope="module")
def series():
    from bot.settings.load import load_series
    return load_series(ROOT / "config" / "series.yaml")


def rule(when="pct_change(IWM, 5) >= 3", extra=""):
    return f"rules:\n  - id: r1\n    when: {when}\n{extra}"


# nine levels of nine aliases: 10^9 values from a few hundred bytes
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")) + rule(extra="    title: *i\n")

# (what is wrong, file text, "line:col", words the message must contain)
MISTAKES = [
    ("YAML: tab indentation", "rules:\n\t- id: r1\n", "2:1", "tabs"),
    ("YAML: unclosed bracket", "rules: [\n", "2:1", "YAML syntax"),
    ("YAML: colon in plain value", rule("x", "    title: Rates: up\n"), "4:17", "must be quoted"),
    ("YAML: bad indentation", "rules:\n  - id: r1\n   when: x\n", "3:4", "YAML syntax"),
    ("duplicate key", rule(extra="    when: IWM > 1\n"), "4:5", "appears twice"),
    ("not a mapping", "- a\n- b\n", "1:1", "expected a mapping"),
    ("rules missing", "defaults: {cooldown: 3}\n", "1:1", "missing field 'rules'"),
    ("rules not a list", "rules: {id: r1}\n", "1:8", "valid list"),
    ("unknown top-level field", "rule:\n  - id: r1\n", "1:1", "unknown field 'rule'; did you mean 'rules'?"),
    ("unknown rule field", rule(extra="    cooldwn: 3\n"), "4:5", "unknown field 'cooldwn'; did you mean 'cooldown'?"),
    ("missing when", "rules:\n  - id: r1\n    title: t\n", "2:5", "missing field 'when'"),
    ("missing id", "rules:\n  - when: IWM > 1\n", "2:5", "missing field 'id'"),
    ("bad id", "rules:\n  - id: 'small cap'\n    when: IWM > 1\n", "2:9", "should match pattern"),
    ("duplicate id", rule() + "  - id: r1\n    when: IWM > 2\n", "4:9", "used twice (first on line 2)"),
    ("negative cooldown", rule(extra="    cooldown: -1\n"), "4:15", "greater than or equal to 0"),
    ("cooldown not a number", rule(extra="    cooldown: soon\n"), "4:15", "valid integer"),
    ("for of zero", rule(extra="    for: 0\n"), "4:10", "greater than or equal to 1"),
    ("bad severity", rule(extra="    severity: urgent\n"), "4:15", "'info', 'warning' or 'critical'"),
    ("bad channel", rule(extra="    notify: [sms]\n"), "4:14", "'console', 'telegram', 'email'"),
    ("unknown series", rule("pct_change(IWN, 5) >= 3"), "3:22", "unknown series 'IWN'; did you mean 'IWM'?"),
    ("lower-case series", rule("iwm > 3"), "3:11", "did you mean 'IWM'?"),
    ("unknown function", rule("pct_chnge(IWM, 5) >= 3"), "3:11", "unknown function 'pct_chnge'; did you mean"),
    ("too few arguments", rule("pct_change(IWM) >= 3"), "3:11", "takes 2 arguments (x, n), got 1"),
    ("too many arguments", rule("sma(IWM, 5, 3) > 1"), "3:11", "takes 2 arguments"),
    ("window not whole", rule("sma(IWM, 2.5) > 1"), "3:20", "whole number of sessions"),
    ("window is a series", rule("sma(IWM, SPY) > 1"), "3:20", "whole number of sessions"),
    ("window too large", rule("sma(IWM, 99999) > 1"), "3:20", "from 1 to 10000"),
    ("number as condition", rule("pct_change(IWM, 5)"), "3:11", "must be true or false"),
    ("condition as number", rule("(IWM > 3) + 1 > 2"), "3:11", "is a condition"),
    ("and on numbers", rule("IWM and SPY"), "3:11", "'and' joins conditions"),
    ("monthly function on daily", rule("mom_pct(IWM) < 0.1"), "3:19", "takes a monthly series"),
    ("series called", rule("IWM(5) > 1"), "3:11", "is a series, not a function"),
    ("function not called", rule("IWM > sma"), "3:17", "is a function: call it"),
    ("single equals", rule("IWM = 3"), "3:15", "use =="),
    ("percent sign", rule("pct_change(IWM, 5) >= 3%"), "3:34", "write percentages as numbers"),
    ("attribute access", rule("IWM.values > 3"), "3:14", "attribute access"),
    ("dunder name", rule("__class__ > 3"), "3:11", "'__'"),
    ("quoted expression offset", "rules:\n  - id: r1\n    when: \"IWN > 3\"\n", "3:12", "unknown series 'IWN'"),
    ("fired unknown rule", rule("fired(small-cap-trop, 5)"), "3:17", "no rule with id 'small-cap-trop'"),
    ("fired cycle", "rules:\n  - id: a\n    when: fired(b, 3)\n  - id: b\n    when: fired(a, 3)\n", "3:11",
     "cycle: a -> b -> a"),
    ("fired itself", "rules:\n  - id: a\n    when: fired(a, 3)\n", "3:11", "cycle: a -> a"),
    ("empty all list", "rules:\n  - id: r1\n    when:\n      all: []\n", "4:12", "takes a list of conditions"),
    ("unknown combinator", "rules:\n  - id: r1\n    when:\n      every:\n        - IWM > 1\n", "4:7",
     "exactly one of all:, any:, not:"),
    ("error inside all list", "rules:\n  - id: r1\n    when:\n      all:\n        - IWM > 1\n        - SPX > 1\n",
     "6:11", "unknown series 'SPX'"),
    ("when is a number", rule("42"), "3:11", "found int 42"),
    ("when empty", "rules:\n  - id: r1\n    when:\n", "3:10", "found nothing"),
    ("message bad format", rule(extra="    message: 'IWM {pct_change(IWM, 5):+.1q}'\n"), "4:39", "not valid"),
    ("message unknown series", rule(extra="    message: 'IWM {pct_change(IWN, 5)}'\n"), "4:31",
     "unknown series 'IWN'"),
    ("message unclosed brace", rule(extra="    message: 'IWM {pct_change(IWM, 5)'\n"), "4:19", "not closed"),
    ("benchmark unknown", rule(extra="    benchmark: SPX\n"), "4:16", "unknown series 'SPX'"),
    ("deep nesting", rule("(" * 45 + "IWM > 1" + ")" * 45), "3:51", "nested more than"),
    # parameters
    ("param shadows a series", rule(extra="    params: {IWM: 3}\n"), "4:14", "parameter 'IWM' has the name of a series"),
    ("param shadows a function", rule(extra="    params: {sma: 3}\n"), "4:14",
     "parameter 'sma' has the name of a function"),
    ("param not a name", rule(extra="    params: {2x: 3}\n"), "4:14", "parameter name '2x' is not a name"),
    ("param a reserved word", rule(extra="    params: {not: 3}\n"), "4:14", "'not' is a reserved word"),
    ("param not a number", rule("pct_change(IWM, 5) >= rally", "    params: {rally: four}\n"), "4:21",
     "parameter 'rally' must be a number, e.g. rally: 4 (got 'four')"),
    ("param true is not a number", rule("pct_change(IWM, 5) >= rally", "    params: {rally: true}\n"), "4:21",
     "must be a number"),
    ("params not a mapping", rule(extra="    params: [1, 2]\n"), "4:13", "valid dictionary"),
    ("param used, not declared", rule("pct_change(IWM, 5) >= rally"), "3:33",
     "unknown series 'rally' (series: CPIAUCSL"),
    ("param misspelt", rule("pct_change(IWM, 5) >= leed", "    params: {lead: 5, rise: 0}\n"), "3:33",
     "unknown parameter or series 'leed'; did you mean 'lead'? (this rule's parameters: lead, rise; series: CPIAUCSL"),
    ("param window not whole", rule("pct_change(IWM, n) >= 3", "    params: {n: 2.5}\n"), "3:27",
     "parameter 'n' (2.5) must be a whole number of sessions"),
    # direction, resolve, clear_for, clear_when
    ("bad direction", rule(extra="    direction: sideways\n"), "4:16", "'up' or 'down'"),
    ("resolve not a boolean", rule(extra="    resolve: sometimes\n"), "4:14", "valid boolean"),
    ("clear_when without resolve", rule(extra="    clear_when: IWM < 1\n"), "4:5",
     "clear_when applies only to a rule with resolve: true"),
    ("clear_for without resolve", rule(extra="    clear_for: 3\n"), "4:5", "add resolve: true"),
    ("clear_for of zero", rule(extra="    resolve: true\n    clear_for: 0\n"), "5:16", "greater than or equal to 1"),
    ("clear_when unknown series", rule(extra="    resolve: true\n    clear_when: IWN < 1\n"), "5:17",
     "unknown series 'IWN'; did you mean 'IWM'?"),
    ("clear_when a number", rule(extra="    resolve: true\n    clear_when: IWM\n"), "5:17", "must be true or false"),
    ("fired of a disabled rule", rule("fired(r2, 3)") + "  - id: r2\n    when: IWM > 1\n    enabled: false\n",
     "3:11", "fired(r2, ...) reads a rule with enabled: false"),
    # hostile input
    ("message width too wide to build", rule(extra="    message: '{IWM:>99999999999}'\n"), "4:20",
     "width 99999999999 in format '>99999999999' is too wide; at most 40"),
    ("message width of a gigabyte", rule(extra="    message: '{IWM:>999999999}'\n"), "4:20", "at most 40 characters"),
    ("message precision too fine", rule(extra="    message: '{IWM:.50f}'\n"), "4:20",
     "precision 50 in format '.50f' is too fine; at most 10 digits"),
    ("alias bomb (billion laughs)", BOMB, "2:8", "expand this file to 926,177,122 values from 36 written"),
    ("alias to itself", "rules: &r\n  - id: r1\n    when: IWM > 1\n    chart: *r\n", "4:12",
     "refers to the value that contains it"),
    # libyaml composes in C: nesting this deep would overflow its stack and kill the process
    ("flow nesting 100,000 deep", "rules: " + "[" * 100_000 + "]" * 100_000 + "\n", "1:1", "nested too deeply"),
    ("block nesting 100,000 deep", "rules:\n" + "- " * 100_000 + "x\n", "1:1", "nested too deeply"),
]

# (what is wrong, file text, every problem as ("line:col", words)): one mistake never hides another
EVERY_PROBLEM = [
    ("a field typo and a function typo in one rule", rule("pct_chg(IWM, 5) >= 3", "    cooldwon: 3\n"),
     [("3:11", "unknown function 'pct_chg'; did you mean 'pct_change'?"),
      ("4:5", "unknown field 'cooldwon'; did you mean 'cooldown'?")]),
    ("a stray % and two unknown series in one expression", rule("pct_change(IWN, 5) >= 3% and SPX > 1"),
     [("3:22", "unknown series 'IWN'; did you mean 'IWM'?"), ("3:34", "write percentages as numbers"),
      ("3:40", "unknown series 'SPX'; did you mean 'SPY'?")]),
    ("a bad severity and an unknown series", rule("IWN > 1", "    severity: urgent\n"),
     [("3:11", "unknown series 'IWN'"), ("4:15", "'info', 'warning' or 'critical'")]),
    ("a missing id and an unknown series", "rules:\n  - when: IWN > 1\n",
     [("2:5", "missing field 'id'"), ("2:11", "unknown series 'IWN'")]),
    ("a bad param, its use, and a bad message", rule("pct_change(IWM, 5) >= rally and IWN > 1",
                                                     "    params: {rally: four}\n    message: '{IWM:>99}'\n"),
     [("3:43", "unknown series 'IWN'"), ("4:21", "parameter 'rally' must be a number"),
      ("5:20", "too wide")]),
    ("when and clear_when each wrong", rule("IWN > 1", "    resolve: true\n    clear_when: SPX < 1\n"),
     [("3:11", "unknown series 'IWN'"), ("5:17", "unknown series 'SPX'")]),
]


@pytest.mark.parametrize("label,text,where,words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_reported_at_its_line_and_column(series, label, text, where, words):
    with pytest.raises(ConfigError) as info:
        loads_rules(text, series)
    first = str(info.value.problems[0])
    assert first.startswith(f"rules.yaml:{where}: "), first
    assert words in first, first


@pytest.mark.parametrize("label,text,expected", EVERY_PROBLEM, ids=[m[0] for m in EVERY_PROBLEM])
def test_every_problem_of_a_rule_is_reported(series, label, text, expected):
    with pytest.raises(ConfigError) as info:
        loads_rules(text, series)
    found = [str(p) for p in info.value.problems]
    assert len(found) == len(expected), found
    for problem, (where, words) in zip(found, expected):
        assert problem.startswith(f"rules.yaml:{where}: ") and words in problem, found


def test_every_problem_in_a_file_is_reported_at_once(series):
    text = rule("IWN > 1", "    cooldown: -3\n") + "  - id: r2\n    when: SPX > 1\n"
    with pytest.raises(ConfigError) as info:
        loads_rules(text, series)
    assert len(info.value.problems) >= 2


def test_the_shipped_rules_are_valid(series):
    rules = loads_rules((ROOT / "config" / "rules.yaml").read_text(), series)
    assert {"small-cap-trap", "soft-cpi-rotation", "risk-off-pivot"} <= {r.id for r in rules}


def test_the_schema_describes_every_rule_field_and_the_condition_grammar():
    schema = json_schema()
    fields = set(schema["$defs"]["RuleSpec"]["properties"])
    assert {"id", "title", "when", "for", "cooldown", "severity", "notify", "message", "benchmark"} <= fields
    assert "Condition" in schema["$defs"]
    json.dumps(schema)


def test_validate_prints_path_line_col_and_exits_1(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text(rule("pct_change(IWN, 5) >= 3"))
    proc = subprocess.run([sys.executable, "-m", "bot", "validate", "--rules", str(bad)], capture_output=True,
                          text=True, env=subprocess_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{bad}:3:22: unknown series 'IWN'; did you mean 'IWM'?")


def test_validate_accepts_the_shipped_rules():
    proc = subprocess.run([sys.executable, "-m", "bot", "validate"], capture_output=True, text=True,
                          env=subprocess_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "6 rule(s) valid" in proc.stdout
