"""Golden-episode tests: the tests file read with file:line:col for every mistake, checked on real days."""

from __future__ import annotations

import pytest

from bot.app.evaluation import prepare
from bot.engine.expectations import check_expectations, summary
from bot.errors import ConfigError
from bot.settings.load import load_series
from bot.settings.rules_file import load_rules, loads_rules
from bot.settings.rules_tests_file import load_tests, loads_tests, rules_tests_path
from tests.conftest import ROOT

# The default pack's small-cap-trap as the issue found it: silent through July 2024.
RULES = """
rules:
  - id: small-cap-trap
    when: pct_change(IWM, 5) >= 4 and change(DGS10, 5) >= 0.20
    cooldown: 15
  - id: soft-cpi-rotation
    when:
      all:
        - released(CPIAUCSL)
        - mom_pct(CPIAUCSL) <= 0.1
        - pct_change(IWM, 1) - pct_change(SPY, 1) >= 2
    cooldown: 0
  - id: spy-crash
    when: pct_change(SPY, 1) <= -4
    cooldown: 10
"""
NAME = "config/rules.test.yaml"


@pytest.fixture(scope="module")
def series():
    return load_series(ROOT / "config" / "series.yaml")


@pytest.fixture(scope="module")
def ev(data_dir, series):
    return prepare(loads_rules(RULES, series), series, data_dir=str(data_dir)).evaluation


def check(ev, text, **kw):
    return check_expectations(ev, loads_tests(text, ev.rules, NAME), **kw)


def test_the_shipped_tests_hold_on_the_shipped_pack(data_dir, series):
    rules = load_rules(ROOT / "config" / "rules.yaml", series)
    evaluation = prepare(rules, series, data_dir=str(data_dir)).evaluation
    outcomes = check_expectations(evaluation, load_tests(ROOT / "config" / "rules.test.yaml", rules, NAME))
    assert [o.message for o in outcomes if not o.ok] == []
    assert len(outcomes) >= 10


def test_a_missed_window_names_the_line_the_nearest_firing_and_the_explain_command(ev):
    (outcome,) = check(ev, "tests:\n  - rule: small-cap-trap\n    fires_within: [2024-07-15, 2024-07-19]\n")
    assert not outcome.ok
    assert outcome.message == (
        "config/rules.test.yaml:3:5: small-cap-trap: expected a firing in 2024-07-15..2024-07-19, got none "
        "(nearest: 2025-05-14; explain: closebell explain small-cap-trap --date 2024-07-15)")


def test_green_expectations_of_each_kind(ev):
    outcomes = check(ev, """tests:
  - rule: soft-cpi-rotation
    fires: [2024-07-11]
    quiet: [2024-08-14]
    quiet_within: [2024-06-01, 2024-07-10]
  - rule: spy-crash
    fires_within: [2008-09-01, 2008-10-31]
    at_most_per_year: 1
    at_least_per_year: 0.5
""")
    assert [(o.expectation.kind, o.ok) for o in outcomes] == [
        ("fires", True), ("quiet", True), ("quiet_within", True),
        ("fires_within", True), ("at_most_per_year", True), ("at_least_per_year", True)]
    assert outcomes[3].happened == "3 firings: 2008-09-15, 2008-10-06, 2008-10-22"
    assert summary(outcomes) == "6 passed, 0 failed (6 expectations)"


def test_red_expectations_say_what_happened(ev):
    messages = [o.message for o in check(ev, """tests:
  - rule: soft-cpi-rotation
    fires: [2024-08-14]
    quiet: [2024-07-11]
  - rule: spy-crash
    quiet_within: [2008-09-01, 2008-10-31]
    at_most_per_year: 0.5
    fires: [2008-09-13]
""")]
    assert messages == [
        "config/rules.test.yaml:3:5: soft-cpi-rotation: expected a firing on 2024-08-14, got none "
        "(nearest: 2024-07-11; explain: closebell explain soft-cpi-rotation --date 2024-08-14)",
        "config/rules.test.yaml:4:5: soft-cpi-rotation: expected no firing on 2024-07-11, got a firing on "
        "2024-07-11 (explain: closebell explain soft-cpi-rotation --date 2024-07-11)",
        "config/rules.test.yaml:6:5: spy-crash: expected no firing in 2008-09-01..2008-10-31, got 3 firings: "
        "2008-09-15, 2008-10-06, 2008-10-22 (explain: closebell explain spy-crash --date 2008-09-15)",
        "config/rules.test.yaml:7:5: spy-crash: expected at most 0.5 firings a year, got 0.72 a year "
        "(24 firings over 1993-02-01..2026-06-12, 33.3 years)",
        "config/rules.test.yaml:8:5: spy-crash: expected a firing on 2008-09-13, got no session on 2008-09-13 "
        "(not a NYSE trading day)",
    ]


def test_a_rate_over_the_items_own_span(ev):
    (outcome,) = check(ev, "tests:\n  - rule: spy-crash\n    at_most_per_year: 0.5\n    from: 2010-01-01\n")
    assert outcome.message == ("config/rules.test.yaml:3:5: spy-crash: expected at most 0.5 firings a year over "
                               "2010-01-01..the end, got 0.61 a year (10 firings over 2010-01-04..2026-06-12, "
                               "16.4 years)")


def test_from_to_skip_what_lies_outside(ev):
    outcomes = check(ev, "tests:\n  - rule: small-cap-trap\n    fires_within: [2024-07-15, 2024-07-19]\n"
                         "    fires: [2024-07-16]\n", start="2025-01-01")
    assert [(o.ok, o.skipped) for o in outcomes] == [(True, True), (True, True)]


def test_the_explain_hint_can_name_the_rules_file(ev):
    (outcome,) = check(ev, "tests:\n  - rule: soft-cpi-rotation\n    fires: [2024-08-14]\n",
                       explain_command="python -m bot explain {rule} --date {date} --rules my.yaml")
    assert outcome.hint == "python -m bot explain soft-cpi-rotation --date 2024-08-14 --rules my.yaml"


MISTAKES = [
    ("tests:\n  - rule: small-cap-trapp\n    fires: [2024-07-11]\n",
     "2:11: no rule with id 'small-cap-trapp'; did you mean 'small-cap-trap'? "
     "(rules: small-cap-trap, soft-cpi-rotation, spy-crash)"),
    ("tests:\n  - rule: spy-crash\n    fires_within: [2024-07-19, 2024-07-15]\n",
     "3:32: 'fires_within' ends (2024-07-15) before it starts (2024-07-19); write [from, to]"),
    ("tests:\n  - rule: spy-crash\n    fire: [2024-07-11]\n", "3:5: unknown key 'fire'; did you mean 'fires'?"),
    ("tests:\n  - rule: spy-crash\n    fires: [2024-13-01]\n",
     "3:13: fires: '2024-13-01' is not a date; write YYYY-MM-DD, e.g. 2024-07-15"),
    ("tests:\n  - rule: spy-crash\n    fires: [July 11]\n",
     "3:13: fires: 'July 11' is not a date; write YYYY-MM-DD, e.g. 2024-07-15"),
    ("tests:\n  - rule: spy-crash\n    quiet_within: [2024-07-19]\n",
     "3:19: 'quiet_within' takes two dates [from, to], e.g. quiet_within: [2024-06-01, 2024-07-12]; got 1 item"),
    ("tests:\n  - rule: spy-crash\n    at_most_per_year: many\n",
     "3:23: 'at_most_per_year' takes a number of firings per year (0 or more), e.g. at_most_per_year: 6; "
     "got 'many'"),
    ("tests:\n  - rule: spy-crash\n",
     "2:5: no expectation; add one of fires_within, quiet_within, fires, quiet, at_most_per_year, "
     "at_least_per_year, e.g. fires_within: [2024-07-15, 2024-07-19]"),
    ("tests:\n  - fires: [2024-07-11]\n", "2:5: missing 'rule:' (the id of the rule this test is about)"),
    ("tests:\n  - spy-crash\n", "2:5: each test is a mapping with 'rule:' and an expectation, e.g. "
                                "'- rule: small-cap-trap' then '  fires_within: [2024-07-15, 2024-07-19]'; found str"),
    ("test:\n  - rule: spy-crash\n", "1:1: expected a mapping with a 'tests:' list; found keys test"),
    ("tests:\n  - rule: spy-crash\n    fires: [2024-07-11]\nextra: 1\n",
     "4:1: unknown key 'extra' (the file holds 'tests:' only)"),
]


@pytest.mark.parametrize("text, expected", MISTAKES, ids=[m[1][:40] for m in MISTAKES])
def test_each_mistake_is_reported_at_its_line_and_column(ev, text, expected):
    with pytest.raises(ConfigError) as err:
        loads_tests(text, ev.rules, NAME)
    assert [str(p) for p in err.value.problems] == [f"{NAME}:{expected}"]


def test_every_mistake_is_reported_at_once(ev):
    with pytest.raises(ConfigError) as err:
        loads_tests("tests:\n  - rule: nope\n    fires: [x]\n  - rule: spy-crash\n    quiet: [2024-02-30]\n",
                    ev.rules, NAME)
    assert [(p.line, p.col) for p in err.value.problems] == [(2, 11), (3, 13), (5, 13)]


def test_the_tests_file_sits_beside_the_rules_file():
    assert str(rules_tests_path("config/rules.yaml")) == "config/rules.test.yaml"
    assert str(rules_tests_path("/x/my-rules.yml")) == "/x/my-rules.test.yml"
