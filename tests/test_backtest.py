"""The rule engine over the real shipped history: the same answer from check and backtest."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from bot.app.evaluation import prepare
from bot.settings.rules_file import load_rules
from bot.settings.load import load_series
from tests.conftest import ROOT, subprocess_env


@pytest.fixture(scope="module")
def shipped(data_dir):
    series = load_series(ROOT / "config" / "series.yaml")
    rules = load_rules(ROOT / "config" / "rules.yaml", series)
    return series, rules, prepare(rules, series, data_dir=str(data_dir))


def bot(*args, **env):
    return subprocess.run([sys.executable, "-m", "bot", *map(str, args)], capture_output=True, text=True,
                          env=subprocess_env(**env), cwd=ROOT, timeout=300)


def test_the_soft_cpi_rule_fires_on_2024_07_11(shipped):
    _, _, prepared = shipped
    fires = prepared.evaluation.fire_dates("soft-cpi-rotation", "2024-01-01", "2024-12-31")
    assert list(fires.strftime("%Y-%m-%d")) == ["2024-07-11"]


def test_known_values_of_2024_07_11_match_the_data_readme(shipped):
    _, rules, prepared = shipped
    ev = prepared.evaluation
    i = ev.frame.index_of("2024-07-11")
    values = ev.values(ev.rule("soft-cpi-rotation"), i)
    assert values["pct_change(IWM, 1)"] == pytest.approx(3.59, abs=0.005)
    assert values["pct_change(SPY, 1)"] == pytest.approx(-0.86, abs=0.005)
    assert ev.frame.daily["DGS10"][i] == 4.20 and ev.frame.daily["DGS10"][i - 1] == 4.28


def test_each_shipped_rule_fires_since_2008_and_at_most_six_times_a_year_on_average(shipped):
    _, rules, prepared = shipped
    sessions = prepared.frame.sessions
    years = (sessions[-1] - pd.Timestamp("2008-01-01")).days / 365.25
    for rule in rules:
        fires = prepared.evaluation.fire_dates(rule.id, "2008-01-01")
        per_year = pd.Series(1, index=fires).groupby(fires.year).sum()
        assert 1 <= len(fires) <= 6 * years, (rule.id, per_year.to_dict())
        assert per_year.max() <= 8, (rule.id, per_year.to_dict())


def test_the_shipped_pack_catches_its_seed_episode(shipped):
    # soft June CPI on 2024-07-11, small caps run while the 10y yield stops falling, then the 08-02 sell-off
    ev = shipped[2].evaluation
    assert len(ev.fire_dates("small-cap-trap", "2024-07-15", "2024-07-19")) >= 1
    assert len(ev.fire_dates("small-cap-trap", "2024-06-01", "2024-07-12")) == 0
    assert len(ev.fire_dates("risk-off-pivot", "2024-07-24", "2024-08-07")) >= 1


def test_check_for_a_day_equals_the_backtest_answer_for_that_day(shipped, data_dir):
    series, rules, full = shipped
    ev = full.evaluation
    days = [ev.frame.index_of(d) for d in ("2024-07-11", "2024-04-10", "2022-06-13", "2020-03-16")]
    fire_days = sorted({i for r in rules for i in ev.fires[r.id].nonzero()[0] if i > 5000})[:6]
    for i in days + fire_days:
        session = ev.frame.sessions[i]
        as_of = prepare(rules, series, data_dir=str(data_dir), as_of=session.date()).evaluation
        j = as_of.frame.index_of(session)
        for rule in rules:
            assert bool(as_of.fires[rule.id][j]) == bool(ev.fires[rule.id][i]), (rule.id, session)
            assert as_of.message(rule, j) == ev.message(rule, i)


def test_cpi_is_invisible_before_its_release_date(shipped, data_dir):
    series, rules, _ = shipped
    before = prepare(rules, series, data_dir=str(data_dir), as_of=pd.Timestamp("2024-07-10").date())
    cpi = before.observations["CPIAUCSL"]
    assert cpi.index.max() == pd.Timestamp("2024-05-01")


def test_backtest_json_lists_fires_per_rule_and_nothing_else(data_dir):
    proc = bot("backtest", "--data-dir", data_dir, "--from", "2024-01-01", "--to", "2024-12-31", "--json")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["rules"]["soft-cpi-rotation"]["fires"] == ["2024-07-11"]
    assert set(body["rules"]) >= {"small-cap-trap", "risk-off-pivot"}


def test_the_window_limits_what_is_reported_not_what_is_computed(data_dir):
    wide = json.loads(bot("backtest", "--data-dir", data_dir, "--from", "2008-01-01", "--to", "2009-12-31",
                          "--json").stdout)
    narrow = json.loads(bot("backtest", "--data-dir", data_dir, "--from", "2009-01-01", "--to", "2009-12-31",
                            "--json").stdout)
    for rule_id, body in narrow["rules"].items():
        assert body["fires"] == [d for d in wide["rules"][rule_id]["fires"] if d >= "2009"], rule_id


def test_backtest_draws_a_plot(data_dir, tmp_path):
    png = tmp_path / "fires.png"
    proc = bot("backtest", "--data-dir", data_dir, "--from", "2024-01-01", "--plot", png)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_on_a_weekend_uses_the_friday_and_says_so(data_dir):
    proc = bot("check", "--data-dir", data_dir, "--date", "2024-07-13", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["session"] == "2024-07-12"
    assert "not a NYSE session" in proc.stderr


def test_check_reports_what_fires_with_values(data_dir):
    proc = bot("check", "--data-dir", data_dir, "--date", "2024-07-11")
    assert proc.returncode == 0, proc.stderr
    assert "FIRES  soft-cpi-rotation" in proc.stdout
    assert "IWM +3.59% vs SPY -0.86%" in proc.stdout


def test_check_says_which_inputs_were_carried_forward(data_dir):
    # 2024-10-14, Columbus Day: stocks traded, the bond market was shut
    proc = bot("check", "--data-dir", data_dir, "--date", "2024-10-14", "--json")
    state = json.loads(proc.stdout)["rules"]["small-cap-trap"]
    assert "DGS10 carried forward from 2024-10-11" in state["gaps"]


def test_check_without_data_for_a_series_says_what_to_run(tmp_path):
    proc = bot("check", CLOSEBELL_HOME=tmp_path / "empty")
    assert proc.returncode == 3
    assert "run `closebell fetch` first" in proc.stderr


def test_the_compact_json_text_of_each_rule_is_json_dumps_of_its_json(shipped):
    """`backtest --json` writes rule_texts (forward returns formatted as arrays, many rules per call); it
    must be json.dumps of rule_json character for character, and parse back to the same numbers."""
    from bot.app.backtest import backtest
    result = backtest(shipped[2])
    texts = list(result.rule_texts(chunk=4))  # chunks that split the shipped rules unevenly
    assert [report.rule for report, _ in texts] == [r.rule for r in result.reports]
    for report, text in texts:
        assert text == json.dumps(result.rule_json(report), separators=(",", ":")), report.rule
    assert sum(len(json.loads(text)["forward_returns"]["20"]) for _, text in texts) == \
        sum(r.firings for r in result.reports) > 0


EMPTY_WINDOWS = [
    # (arguments, what the one line on stderr must say)
    (["--from", "2030-01-01"], "--from 2030-01-01 holds no session with data; the data runs from 1962-01-02 to "
                               "2026-06-12 (the last session with data)"),
    (["--from", "2024-07-13", "--to", "2024-07-14"], "--from 2024-07-13 --to 2024-07-14 holds no session"),
    (["--to", "1990-01-01"], "--to 1990-01-01 is before any rule can be evaluated (the first from 2000-06-12)"),
]


@pytest.mark.parametrize("window,says", EMPTY_WINDOWS, ids=[" ".join(w) for w, _ in EMPTY_WINDOWS])
def test_a_window_without_sessions_is_a_usage_error_naming_the_data(data_dir, window, says):
    proc = bot("backtest", "--data-dir", data_dir, *window)
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == ""
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
