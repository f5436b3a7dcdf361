"""`check` on a rule whose condition holds but which sends nothing says why (cooldown, `for:`, still active).

IWM rose 4% or more over 5 sessions from 2024-07-11 on (the soft-CPI rally), so one condition, three
ways of not firing on the sessions after its first firing.
"""

from __future__ import annotations

import json

import pytest

from tests.apps import closebell

RULES = """\
rules:
  - id: cool
    when: pct_change(IWM, 5) >= 4
    cooldown: 15
  - id: three
    when: pct_change(IWM, 5) >= 4
    for: 3
    cooldown: 0
  - id: latch
    when: pct_change(IWM, 5) >= 4
    resolve: true
    cooldown: 0
"""

CASES = [
    # (session, rule, fires, why it holds but sends nothing)
    ("2024-07-10", "cool", False, None),  # the condition does not hold yet
    ("2024-07-11", "cool", True, None),
    ("2024-07-12", "cool", False, "in cooldown until 2024-08-01 (fired 2024-07-11; cooldown: 15)"),
    ("2024-07-11", "three", False, "for: 1 of 3 sessions"),
    ("2024-07-12", "three", False, "for: 2 of 3 sessions"),
    ("2024-07-15", "three", True, None),
    ("2024-07-12", "latch", False, "active since 2024-07-11 (resolve: true): it fires again once it has cleared"),
]


@pytest.fixture(scope="module")
def checks(data_dir, tmp_path_factory):
    rules = tmp_path_factory.mktemp("check") / "rules.yaml"
    rules.write_text(RULES)
    out = {}
    for day in sorted({case[0] for case in CASES}):
        proc = closebell("check", "--rules", rules, "--data-dir", data_dir, "--date", day)
        body = closebell("check", "--rules", rules, "--data-dir", data_dir, "--date", day, "--json")
        assert proc.returncode == 0 and body.returncode == 0, proc.stderr + body.stderr
        out[day] = proc.stdout, json.loads(body.stdout)
    return out


@pytest.mark.parametrize("day,rule,fires,why", CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_check_says_why_a_rule_that_holds_sends_nothing(checks, day, rule, fires, why):
    text, body = checks[day]
    state = body["rules"][rule]
    assert (state["fires"], state["not_sent"]) == (fires, why)
    block = text.split(f"  {rule} [")[1].split("\n\n")[0]
    assert (f"holds, not sent: {why}" in block) if why else ("not sent" not in block), block
