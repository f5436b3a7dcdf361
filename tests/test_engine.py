"""Exact semantics of the engine on small hand-made inputs: what users and backtests rely on."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bot.data import calendar
from bot.data.sources.base import observations
from bot.engine import frame as frames
from bot.engine.evaluate import evaluate, fire
from bot.errors import ConfigError
from bot.settings.models import SeriesDef
from bot.settings.rules_file import loads_rules
from tests.conftest import ROOT, subprocess_env

SERIES = {
    "A": SeriesDef(name="A", source="csv"),
    "B": SeriesDef(name="B", source="csv"),
    "Y": SeriesDef(name="Y", source="csv", units="percent"),
    "CPI": SeriesDef(name="CPI", source="csv", frequency="monthly", units="index"),
}
SESSIONS = calendar.sessions("2024-06-03", "2024-07-31")


def daily(values, start="2024-06-03"):
    days = SESSIONS[SESSIONS >= pd.Timestamp(start)][: len(values)]
    return observations(days, values)


def run(when, data, **extra):
    body = "\n".join(f"    {k}: {v}" for k, v in extra.items())
    rules = loads_rules(f"rules:\n  - id: r\n    when: \"{when}\"\n{body}\n", SERIES)
    frame = frames.build(data, {k: SERIES[k].frequency for k in data}, SESSIONS)
    return evaluate(rules, frame)


def values_of(when, data):
    """The numeric value of an expression on every session (via a message template)."""
    ev = run(f"{when} > -1e300", data)
    node = ev.rules[0].condition.left
    return ev.context.eval(node)


def test_pct_change_is_percent_over_n_sessions():
    out = values_of("pct_change(A, 2)", {"A": daily([100, 105, 110, 99])})
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(10.0) and out[3] == pytest.approx(-5.714285714)


def test_change_is_in_the_series_units():
    out = values_of("change(Y, 1)", {"Y": daily([4.28, 4.20])})
    assert out[1] == pytest.approx(-0.08)


def test_window_functions_include_today_and_need_a_full_window():
    data = {"A": daily([1, 2, 3, 4, 10])}
    sma, hi, lo = (values_of(f"{f}(A, 3)", data) for f in ("sma", "highest", "lowest"))
    assert np.isnan(sma[1]) and sma[2] == pytest.approx(2) and sma[4] == pytest.approx(17 / 3)
    assert hi[4] == 10 and lo[4] == 3


def test_drawdown_is_percent_below_the_window_high():
    out = values_of("drawdown(A, 3)", {"A": daily([100, 120, 90])})
    assert out[2] == pytest.approx(-25.0)


def test_zscore_uses_the_sample_standard_deviation():
    out = values_of("zscore(A, 4)", {"A": daily([1, 2, 3, 10])})
    window = np.array([1, 2, 3, 10.0])
    assert out[3] == pytest.approx((10 - window.mean()) / window.std(ddof=1))


def test_corr_correlates_daily_changes():
    out = values_of("corr(A, B, 3)", {"A": daily([1, 2, 4, 7]), "B": daily([10, 8, 4, -2])})
    assert np.isnan(out[2]) and out[3] == pytest.approx(-1.0)


def test_crossed_above_is_true_only_on_the_crossing_session():
    ev = run("crossed_above(A, B)", {"A": daily([1, 2, 3, 4]), "B": daily([2, 2, 2, 2])})
    assert ev.holds["r"][:4].tolist()[1:] == [0.0, 1.0, 0.0]


def test_a_gap_is_carried_forward_three_sessions_then_missing():
    days = SESSIONS[:6]
    data = {"A": observations([days[0]], [5.0]), "B": daily([1, 1, 1, 1, 1, 1])}
    frame = frames.build(data, {"A": "daily", "B": "daily"}, SESSIONS[:6])
    assert frame.daily["A"][:4].tolist() == [5.0, 5.0, 5.0, 5.0]
    assert np.isnan(frame.daily["A"][4])
    assert frame.age["A"][:5].tolist() == [0, 1, 2, 3, 4]


def test_missing_is_unknown_even_under_not_and_never_fires():
    data = {"A": observations([SESSIONS[0]], [5.0]), "B": daily([1] * 10)}
    ev = run("not (A > 10)", data)
    holds = ev.holds["r"]
    assert holds[0] == 1.0 and np.isnan(holds[5])
    assert not ev.fires["r"][5]


def cpi(rows):
    return observations([m for m, _, _ in rows], [v for _, v, _ in rows], [r for _, _, r in rows])


def test_a_monthly_value_exists_from_its_release_date_not_its_month():
    data = {"CPI": cpi([("2024-05-01", 100.0, "2024-06-12"), ("2024-06-01", 99.9, "2024-07-11")]),
            "A": daily([1] * 40)}
    frame = frames.build(data, {"CPI": "monthly", "A": "daily"}, SESSIONS)
    i10, i11 = frame.index_of("2024-07-10"), frame.index_of("2024-07-11")
    assert frame.monthly["CPI"].value[i10] == 100.0 and frame.monthly["CPI"].value[i11] == 99.9
    assert np.isnan(frame.monthly["CPI"].value[frame.index_of("2024-06-11")])


def test_mom_pct_compares_with_the_previous_calendar_month_and_is_missing_without_it():
    data = {"CPI": cpi([("2025-09-01", 100.0, "2025-10-24"), ("2025-11-01", 101.0, "2025-12-18"),
                        ("2025-12-01", 101.5, "2026-01-13")]), "A": observations([], [])}
    sessions = calendar.sessions("2025-10-01", "2026-01-31")
    frame = frames.build(data, {"CPI": "monthly", "A": "daily"}, sessions)
    mom = frame.monthly["CPI"].mom
    assert np.isnan(mom[frame.index_of("2025-12-18")])  # no October 2025 print
    assert mom[frame.index_of("2026-01-13")] == pytest.approx((101.5 / 101.0 - 1) * 100)


def test_released_is_true_on_the_first_session_on_or_after_a_release():
    # 2020-04-10 was Good Friday: that release's first session is Monday 2020-04-13
    data = {"CPI": cpi([("2020-03-01", 258.1, "2020-04-10")])}
    sessions = calendar.sessions("2020-04-01", "2020-04-30")
    frame = frames.build(data, {"CPI": "monthly"}, sessions)
    released = pd.Series(frame.monthly["CPI"].released, index=sessions)
    assert released[released == 1.0].index.strftime("%Y-%m-%d").tolist() == ["2020-04-13"]


def test_for_requires_the_condition_on_consecutive_sessions():
    holds = np.array([1, 1, 0, 1, 1, 1, 1], dtype=float)
    assert fire(holds, 3, 0).nonzero()[0].tolist() == [5, 6]


def test_cooldown_blocks_firing_for_that_many_sessions_after_a_firing():
    holds = np.ones(8)
    assert fire(holds, 1, 2).nonzero()[0].tolist() == [0, 3, 6]
    assert fire(holds, 1, 0).nonzero()[0].tolist() == list(range(8))


def test_fired_sees_another_rule_within_n_sessions_including_today():
    text = """
rules:
  - id: up-big
    when: pct_change(A, 1) >= 5
    cooldown: 0
  - id: after
    when: fired(up-big, 2) and A > 0
    cooldown: 0
"""
    rules = loads_rules(text, SERIES)
    assert [r.id for r in rules] == ["up-big", "after"]
    data = {"A": daily([100, 110, 111, 112, 113])}
    ev = evaluate(rules, frames.build(data, {"A": "daily"}, SESSIONS[:5]))
    assert ev.fires["up-big"].nonzero()[0].tolist() == [1]
    assert ev.fires["after"].nonzero()[0].tolist() == [1, 2]


def test_rules_are_ordered_after_the_rules_they_read():
    text = """
rules:
  - id: second
    when: fired(first, 5)
  - id: first
    when: A > 1
"""
    assert [r.id for r in loads_rules(text, SERIES)] == ["first", "second"]


def test_a_message_template_renders_values_with_format_specs():
    text = """
rules:
  - id: m
    when: A > 0
    message: "A moved {pct_change(A, 1):+.1f}% ({change(A, 1)*100:.0f} cents), {{braces}}"
"""
    rules = loads_rules(text, SERIES)
    data = {"A": daily([100.0, 103.5])}
    ev = evaluate(rules, frames.build(data, {"A": "daily"}, SESSIONS[:2]))
    assert ev.message(rules[0], 1) == "A moved +3.5% (350 cents), {braces}"
    assert ev.message(rules[0], 0).startswith("A moved n/a%")


def test_the_default_message_lists_every_function_the_condition_uses():
    rules = loads_rules("rules:\n  - id: d\n    when: pct_change(A, 1) > 1 and change(Y, 1) > 0\n", SERIES)
    data = {"A": daily([100.0, 103.5]), "Y": daily([4.0, 4.1])}
    ev = evaluate(rules, frames.build(data, {"A": "daily", "Y": "daily"}, SESSIONS[:2]))
    assert ev.message(rules[0], 1) == "pct_change(A, 1) = +3.50; change(Y, 1) = +0.10"


def test_shared_sub_expressions_are_computed_once():
    text = "rules:\n" + "".join(f"  - id: r{i}\n    when: pct_change(A, 5) > {i}\n" for i in range(20))
    rules = loads_rules(text, SERIES)
    ev = evaluate(rules, frames.build({"A": daily(list(range(1, 30)))}, {"A": "daily"}, SESSIONS))
    assert sum(1 for k in ev.context.memo if k.startswith("pct_change")) == 1


def test_the_engine_imports_no_file_store_data_notify_or_adapter_module():
    """The engine is pure: parsed rules and a frame in, an evaluation out (the rules file is read elsewhere)."""
    import ast
    from pathlib import Path

    import bot.engine
    forbidden = ("bot.settings", "bot.store", "bot.data", "bot.notify", "bot.daemon", "bot.commands", "bot.app",
                 "bot.telegram", "bot.cli")
    found = []
    for path in sorted(Path(bot.engine.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            found += [f"{path.name}:{node.lineno}: {name}" for name in names
                      if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert found == []


# --- parameters ---------------------------------------------------------------------------------

def test_a_parameter_reads_as_its_number_in_when_and_message():
    text = """
rules:
  - id: p
    params: {rally: 3, n: 1}
    cooldown: 0
    when: pct_change(A, n) >= rally
    message: "A {pct_change(A, n):+.1f}% (needs {rally:.0f})"
"""
    rules = loads_rules(text, SERIES)
    ev = evaluate(rules, frames.build({"A": daily([100.0, 103.5, 105.0])}, {"A": "daily"}, SESSIONS[:3]))
    assert ev.fires["p"].tolist() == [False, True, False]
    assert ev.message(rules[0], 1) == "A +3.5% (needs 3)"
    assert rules[0].params == {"rally": 3.0, "n": 1.0} and rules[0].series == ("A",)


def test_with_params_rebinds_condition_clear_when_and_message():
    from bot.engine.rules import with_params
    text = """
rules:
  - id: p
    params: {rally: 3}
    cooldown: 0
    resolve: true
    clear_when: pct_change(A, 1) < rally - 10
    when: pct_change(A, 1) >= rally
    message: "{rally}"
"""
    rule = loads_rules(text, SERIES)[0]
    other = with_params(rule, {"rally": 1})
    assert other.condition.key() == "(pct_change(A, 1) >= 1)"
    assert other.clear_when.key() == "(pct_change(A, 1) < (1 - 10))"
    assert other.message.expressions[0].node.value == 1.0 and other.params == {"rally": 1.0}
    assert rule.condition.key() == "(pct_change(A, 1) >= 3)"  # the original is unchanged
    with pytest.raises(KeyError, match="no parameter 'rise'"):
        with_params(rule, {"rise": 1})


def test_a_window_parameter_must_stay_a_whole_number_of_sessions():
    from bot.engine.rules import with_params
    rule = loads_rules("rules:\n  - id: w\n    params: {n: 5}\n    when: sma(A, n) > 1\n", SERIES)[0]
    assert with_params(rule, {"n": 10}).condition.key() == "(sma(A, 10) > 1)"
    with pytest.raises(ValueError, match="whole number of sessions"):
        with_params(rule, {"n": 2.5})


def test_two_rules_with_different_parameter_values_never_share_a_result():
    text = """
rules:
  - id: low
    params: {t: 1}
    cooldown: 0
    when: pct_change(A, 1) >= t
  - id: high
    params: {t: 5}
    cooldown: 0
    when: pct_change(A, 1) >= t
"""
    rules = loads_rules(text, SERIES)
    ev = evaluate(rules, frames.build({"A": daily([100.0, 102.0, 108.0])}, {"A": "daily"}, SESSIONS[:3]))
    assert ev.fires["low"].tolist() == [False, True, True]
    assert ev.fires["high"].tolist() == [False, False, True]


# --- what a rule reads, and enabled: false -----------------------------------------------------

def test_needs_lists_every_series_a_rule_reads_anywhere_in_order():
    text = """
rules:
  - id: n
    when: A > 1
    resolve: true
    clear_when: B < 1
    message: "{change(Y, 1)*100:+.0f} bp, CPI {mom_pct(CPI):+.1f}%"
    benchmark: B
    chart: [A, Y]
"""
    rule = loads_rules(text, SERIES)[0]
    assert rule.series == ("A",)
    assert rule.needs == ("A", "B", "Y", "CPI")


def test_a_disabled_rule_is_checked_but_never_evaluated():
    text = "rules:\n  - id: live\n    when: A > 1\n  - id: parked\n    when: A > 2\n    enabled: false\n"
    rules = loads_rules(text, SERIES)
    assert [r.id for r in rules] == ["live"]
    ev = evaluate(rules, frames.build({"A": daily([3.0])}, {"A": "daily"}, SESSIONS[:1]))
    assert set(ev.fires) == {"live"}
    with pytest.raises(ConfigError, match="unknown series 'Q'"):
        loads_rules("rules:\n  - id: parked\n    when: Q > 2\n    enabled: false\n", SERIES)


def test_check_loads_a_series_read_only_by_the_message(tmp_path, data_dir):
    rules = tmp_path / "rules.yaml"
    rules.write_text("""
rules:
  - id: iwm-up
    title: IWM up 3%
    when: pct_change(IWM, 1) >= 3
    message: "IWM {pct_change(IWM, 1):+.1f}%, the 10y yield {change(DGS10, 1)*100:+.0f} bp"
""")
    proc = subprocess.run([sys.executable, "-m", "bot", "check", "--data-dir", str(data_dir), "--date", "2024-07-11",
                           "--rules", str(rules)], capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "IWM +3.6%, the 10y yield -8 bp" in proc.stdout  # DGS10 4.28 -> 4.20 (the data README)


# --- functions against values computed by hand from the real CSV files ----------------------------

def csv_rows(data_dir, name) -> dict[str, float]:
    with open(data_dir / f"{name}.csv", newline="") as f:
        return {row["date"]: float(row["value"]) for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def real(data_dir):
    from tests.test_logic import evaluate_on_history
    from bot.settings.load import load_series
    text = """
rules:
  - id: f
    cooldown: 0
    when: crossed_below(DGS10, DGS2)
    message: "{lag(IWM, 3)} {abs(pct_change(SPY, 1))} {min(pct_change(IWM, 1), pct_change(SPY, 1))} {max(pct_change(IWM, 1), pct_change(SPY, 1))}"
"""
    series = load_series(ROOT / "config" / "series.yaml")
    return evaluate_on_history(loads_rules(text, series), series, data_dir)


def value_on(ev, day, index):
    node = ev.rule("f").message.expressions[index].node
    return float(ev.context.eval(node)[ev.frame.index_of(day)])


def test_lag_abs_min_max_on_real_data(real, data_dir):
    iwm, spy = csv_rows(data_dir, "IWM"), csv_rows(data_dir, "SPY")
    days = sorted(iwm)
    i = days.index("2024-07-11")
    iwm_change = (iwm["2024-07-11"] / iwm[days[i - 1]] - 1) * 100  # +3.59
    spy_change = (spy["2024-07-11"] / spy[days[i - 1]] - 1) * 100  # -0.86
    assert value_on(real, "2024-07-11", 0) == pytest.approx(iwm[days[i - 3]])  # lag(IWM, 3): 2024-07-08
    assert value_on(real, "2024-07-11", 1) == pytest.approx(abs(spy_change)) and spy_change < 0
    assert value_on(real, "2024-07-11", 2) == pytest.approx(spy_change)
    assert value_on(real, "2024-07-11", 3) == pytest.approx(iwm_change)


def test_crossed_below_on_real_data_is_each_yield_curve_inversion(real, data_dir):
    ten, two = csv_rows(data_dir, "DGS10"), csv_rows(data_dir, "DGS2")
    days = [d for d in sorted(ten) if d in two and "2019-01-01" <= d <= "2023-12-31"]
    by_hand = [d for prev, d in zip(days, days[1:]) if ten[d] < two[d] and ten[prev] >= two[prev]]
    assert by_hand == ["2019-08-27", "2022-04-01", "2022-07-06"]  # the 2019 and 2022 inversions
    fired = real.fire_dates("f", "2019-01-02", "2023-12-31").strftime("%Y-%m-%d").tolist()
    assert fired == by_hand
