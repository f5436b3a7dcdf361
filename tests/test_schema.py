"""`python -m bot schema` is a real JSON Schema: the shipped rules pass it, broken ones do not."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from bot.settings.rules_file import json_schema
from tests.conftest import ROOT, subprocess_env


@pytest.fixture(scope="module")
def validator():
    proc = subprocess.run([sys.executable, "-m", "bot", "schema"], capture_output=True, text=True,
                          env=subprocess_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def shipped() -> dict:
    return yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())


def test_the_shipped_rules_file_is_valid_under_the_schema(validator):
    assert list(validator.iter_errors(shipped())) == []


def test_a_rule_using_every_field_is_valid_under_the_schema(validator):
    rule = {"id": "trap", "title": "t", "params": {"rally": 4, "rise": 0.2},
            "when": {"all": ["pct_change(IWM, 5) >= rally", {"not": "change(DGS10, 5) < rise"}]},
            "for": 2, "cooldown": 3, "severity": "critical", "direction": "down", "resolve": True,
            "clear_for": 3, "clear_when": {"any": ["pct_change(IWM, 5) < 1"]}, "notify": ["telegram"],
            "message": "IWM {pct_change(IWM, 5):+.1f}%", "benchmark": "IWM", "chart": ["IWM"], "enabled": False}
    assert list(validator.iter_errors({"rules": [rule]})) == []


# (what is wrong, the rule's fields changed, the JSON path the validator must point at)
BROKEN = [
    ("unknown field", {"cooldwon": 3}, ["rules", 0]),
    ("negative cooldown", {"cooldown": -1}, ["rules", 0, "cooldown"]),
    ("id with a space", {"id": "small cap"}, ["rules", 0, "id"]),
    ("bad severity", {"severity": "urgent"}, ["rules", 0, "severity"]),
    ("bad direction", {"direction": "sideways"}, ["rules", 0, "direction"]),
    ("resolve not a boolean", {"resolve": "sometimes"}, ["rules", 0, "resolve"]),
    ("clear_for of zero", {"clear_for": 0}, ["rules", 0, "clear_for"]),
    ("params value not a number", {"params": {"rally": "four"}}, ["rules", 0, "params", "rally"]),
    ("params name not a name", {"params": {"2x": 1}}, ["rules", 0, "params"]),
    ("condition mapping with two keys", {"when": {"all": ["IWM > 1"], "any": ["IWM > 2"]}}, ["rules", 0, "when"]),
    ("clear_when empty list", {"clear_when": {"all": []}}, ["rules", 0, "clear_when"]),
]


@pytest.mark.parametrize("label,change,path", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_rules_file_is_rejected_by_the_schema(validator, label, change, path):
    data = shipped()
    data["rules"][0].update(change)
    errors = list(validator.iter_errors(data))
    assert errors, label
    assert any(list(e.absolute_path) == path for e in errors), [(list(e.absolute_path), e.message) for e in errors]


def test_the_schema_describes_the_new_rule_fields():
    fields = json_schema()["$defs"]["RuleSpec"]["properties"]
    assert {"params", "direction", "resolve", "clear_for", "clear_when"} <= set(fields)
    assert fields["clear_when"]["$ref"] == "#/$defs/Condition"
