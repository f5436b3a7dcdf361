"""The tuning commands in child processes, as a user chains them: explain -> sweep -> test-rules, each
agreeing with backtest, and a misspelt parameter a usage error."""

from __future__ import annotations

import json

from tests.apps import closebell


def test_explain_sweep_and_test_rules_end_to_end(tmp_path, data_dir):
    d = ["--data-dir", data_dir]
    explained = json.loads(closebell("explain", "small-cap-trap", "--date", "2024-07-16", "--json", *d).stdout)
    [lead, rates] = explained["condition"]["children"]
    assert (lead["holds"], rates["holds"], rates["value"], rates["threshold"]) == (True, False, -0.13, 0.0)
    rows = json.loads(closebell("sweep", "small-cap-trap", "lead=4,5", "--json", *d).stdout)
    backtest = json.loads(closebell("backtest", "--json", *d).stdout)
    assert [r["params"]["lead"] for r in rows] == [4, 5]
    assert rows[1]["firings"] == backtest["rules"]["small-cap-trap"]["count"]  # 5 is the shipped value
    assert rows[1]["dates"] == backtest["rules"]["small-cap-trap"]["fires"]
    bad = tmp_path / "rules.test.yaml"
    bad.write_text("tests:\n  - rule: small-cap-trap\n    fires: [2024-07-16]\n")
    proc = closebell("test-rules", "--tests", bad, *d)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith(f"{bad}:3:5: small-cap-trap: ")
    assert "explain: closebell explain small-cap-trap --date 2024-07-16" in proc.stdout
    assert proc.stdout.splitlines()[-1] == f"{bad}: 0 passed, 1 failed (1 expectation)"
    unknown = closebell("sweep", "small-cap-trap", "lead=4", "ralley=1", *d)
    assert unknown.returncode == 2 and "no parameter 'ralley'" in unknown.stderr
