"""How sure each backtest figure is: p-values, intervals and verdicts against independent computations.

The references here are computed by other methods than bot.engine.significance
uses, on the real shipped history: p-values by 200,000 draws taken as disjoint
chunks of whole random permutations (and by itertools for a tiny exact case),
the bootstrap by multinomial resampling weights, Wilson by the roots of its
quadratic. Each row of a table is one case.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from bot.app.evaluation import prepare
from bot.engine import significance as S
from bot.engine.report import summarize
from bot.engine.sweep import holdout_check, sweep
from bot.settings.load import load_series
from bot.settings.rules_file import loads_rules
from tests.apps import closebell
from tests.conftest import ROOT

REFERENCE_DRAWS = 200_000


def fwd_returns(values: np.ndarray, h: int) -> np.ndarray:
    out = np.full(len(values), np.nan)
    out[:-h] = (values[h:] / values[:-h] - 1) * 100
    return out


@pytest.fixture(scope="module")
def iwm(data_dir):
    return pd.read_csv(data_dir / "IWM.csv", parse_dates=["date"]).set_index("date")["value"]


@pytest.fixture(scope="module")
def pools(iwm):
    """IWM's real 5- and 20-session forward returns, every session with one (2000-06-12 on)."""
    values = iwm[iwm.index >= "2000-06-12"].to_numpy()
    out = {}
    for h in (5, 20):
        fwd = fwd_returns(values, h)
        out[h] = fwd[~np.isnan(fwd)]
    return out


def reference_p(pool: np.ndarray, n: int, mean: float, direction: str, draws: int = REFERENCE_DRAWS,
                seed: int = 7) -> float:
    """Share of `draws` random n-subsets at least as far in `direction`: each whole random permutation of
    the pool (numpy's Fisher-Yates shuffle) is cut into disjoint chunks of n, each chunk a uniform n-subset,
    as many permutations as needed. All but a few sessions: the few left out are drawn, the rest summed."""
    rng = np.random.Generator(np.random.PCG64(seed))  # another bit generator than the code's default
    size, total = len(pool), float(pool.sum())
    k = size - n if n > size // 2 else n
    per = size // k
    sums, count = [], 0
    while count < draws:
        perms = max(1, min(2_000_000 // size, (draws - count + per - 1) // per))
        order = rng.permuted(np.broadcast_to(np.arange(size), (perms, size)), axis=1)[:, :per * k]
        chunk = pool[order].reshape(perms, per, k).sum(axis=2).ravel()
        sums.append(chunk if k == n else total - chunk)
        count += len(chunk)
    sums = np.concatenate(sums)[:draws]
    target = mean * n
    hits = sums >= target - 1e-9 if direction == "up" else sums <= target + 1e-9
    return float(hits.mean())


# (horizon, firings, observed mean as pool mean + shift * sd of the mean, direction, reference draws).
# The reference draws 200,000 samples, except for the two largest n, where 200,000 x n values would take
# minutes: 40,000 there still puts its own error (at most 0.0025, one standard error at p = 0.5) far
# inside the +-0.02 asked.
P_CASES = [
    (20, 8, 1.0, "up", REFERENCE_DRAWS),  # resampled (n <= EXACT_MAX)
    (20, 12, -0.4, "down", REFERENCE_DRAWS),
    (5, 20, 1.8, "up", REFERENCE_DRAWS),
    (20, 21, 1.0, "up", REFERENCE_DRAWS),  # the expansion (n > EXACT_MAX), just above the switch
    (5, 40, -1.7, "down", REFERENCE_DRAWS),
    (20, 150, 0.3, "up", REFERENCE_DRAWS),
    (20, 1000, 1.5, "up", 40_000),
    (5, 3000, -0.8, "down", 40_000),  # nearly half the pool: the finite-population terms matter
    (20, -5, 0.5, "up", REFERENCE_DRAWS),  # all but five sessions: the five left out are drawn (complement)
    (5, -30, -1.0, "down", REFERENCE_DRAWS),
]


@pytest.mark.parametrize("h,n,shift,direction,draws", P_CASES)
def test_p_value_agrees_with_a_200000_draw_reference(pools, h, n, shift, direction, draws):
    pool = pools[h]
    n = n if n > 0 else len(pool) + n
    se = pool.std() * math.sqrt((len(pool) - n) / (len(pool) - 1) / n)
    mean = float(pool.mean() + shift * se)
    p = S.Null(S.Pool(pool, (h,)), n).p_value(mean, direction)
    assert p == pytest.approx(reference_p(pool, n, mean, direction, draws), abs=0.02)


def test_p_value_of_a_tiny_pool_is_the_exact_share_of_all_subsets():
    pool = np.array([-3.1, -1.2, -0.4, 0.0, 0.3, 0.8, 1.1, 2.5, 4.0, 7.2])
    for n, mean, direction in [(4, 1.5, "up"), (3, -0.9, "down"), (7, 1.2, "up")]:
        sums = np.array([sum(c) for c in itertools.combinations(pool, n)])
        exact = np.mean(sums >= mean * n - 1e-9) if direction == "up" else np.mean(sums <= mean * n + 1e-9)
        assert S.Null(S.Pool(pool), n).p_value(mean, direction) == pytest.approx(exact, abs=0.02), (n, mean)


def test_the_shipped_rules_p_values_match_the_reference_on_their_own_pools(data_dir):
    series = load_series(ROOT / "config" / "series.yaml")
    rules = loads_rules((ROOT / "config" / "rules.yaml").read_text(), series)
    ev = prepare(rules, series, data_dir=str(data_dir)).evaluation
    checked = 0
    for report in summarize(ev, start="2008-01-01"):
        values = ev.frame.series(report.benchmark)
        lo, hi = ev.frame.sessions.searchsorted(pd.Timestamp(report.span_from)), \
            ev.frame.sessions.searchsorted(pd.Timestamp(report.span_to))
        for h, stats in report.forward.items():
            fwd = fwd_returns(values, h)
            span = fwd[lo:hi + 1]
            pool = span[~np.isnan(span)]
            own = fwd[report.indices]
            own = own[~np.isnan(own)]
            assert stats.known == len(own)
            if len(own) < S.MIN_FIRINGS:
                assert stats.verdict == "too few firings to say"
                continue
            expected = reference_p(pool, len(own), float(own.mean()), report.direction)
            assert stats.p_value == pytest.approx(expected, abs=0.02), (report.rule, h)
            checked += 1
    assert checked >= 6  # small-cap-trap, breadth-broadening, small-caps-over-nasdaq at both horizons


def reference_interval(values: np.ndarray, resamples: int, seed: int = 11) -> tuple[float, float]:
    """The 90% percentile bootstrap by multinomial weights (how often each value is drawn), in chunks."""
    rng = np.random.Generator(np.random.PCG64(seed))
    n = len(values)
    means = []
    chunk = max(1, 2_000_000 // n)
    for begin in range(0, resamples, chunk):
        weights = rng.multinomial(n, np.full(n, 1 / n), size=min(chunk, resamples - begin))
        means.append(weights @ values / n)
    low, high = np.quantile(np.concatenate(means), [0.05, 0.95])
    return float(low), float(high)


# (firings, every how many sessions of IWM's real 20-session returns they are taken, reference resamples)
INTERVAL_CASES = [
    (8, 97, REFERENCE_DRAWS),  # resampled
    (20, 53, REFERENCE_DRAWS),
    (21, 41, REFERENCE_DRAWS),  # the expansion
    (100, 17, REFERENCE_DRAWS),
    (1000, 3, 40_000),
]


@pytest.mark.parametrize("n,step,resamples", INTERVAL_CASES)
def test_mean_interval_agrees_with_a_large_independent_bootstrap(pools, n, step, resamples):
    values = pools[20][::step][:n]
    assert len(values) == n
    low, high = S.mean_interval(values)
    ref_low, ref_high = reference_interval(values, resamples)
    # Tolerance: a tenth of the mean's standard error. With 4,000 resamples the 5% and 95% quantiles
    # of the resampled means move by about 0.035 standard errors from seed to seed (binomial
    # error of a quantile: sqrt(0.05 * 0.95 / 4000) / phi(1.645)); the reference's own error is
    # smaller still, so 0.1 is three of those, and far below the interval's width (3.3 standard errors).
    tol = 0.1 * values.std() / math.sqrt(n)
    assert low == pytest.approx(ref_low, abs=tol)
    assert high == pytest.approx(ref_high, abs=tol)
    assert low < values.mean() < high


# (hits, firings, low, high): the roots of (1 + z²/n) p² - (2 p̂ + z²/n) p + p̂² = 0, z = 1.6449 (90%)
WILSON_CASES = [
    (7, 10, 0.441700, 0.873123),
    (0, 10, 0.0, 0.212942),
    (10, 10, 0.787058, 1.0),
    (1, 1, 0.269866, 1.0),
    (12, 36, 0.219807, 0.470160),
    (50, 100, 0.418848, 0.581152),
]


@pytest.mark.parametrize("hits,n,low,high", WILSON_CASES)
def test_wilson_interval_is_the_textbook_one(hits, n, low, high):
    got = S.wilson(hits, n)
    assert got == pytest.approx((low, high), abs=1e-6)


# (firings with a known return, p-value, the verdict)
VERDICT_CASES = [
    (0, None, "too few firings to say"),
    (7, 0.0001, "too few firings to say"),  # under 8 firings nothing is said, however small p is
    (8, 0.02, "edge in the predicted direction (p = 0.02)"),
    (12, 0.05, "edge in the predicted direction (p = 0.05)"),  # ALPHA itself counts
    (12, 0.0501, "no evidence of an edge (p = 0.05)"),
    (30, 0.41, "no evidence of an edge (p = 0.41)"),
    (30, 0.004, "edge in the predicted direction (p = 0.004)"),
    (300, 0.0001, "edge in the predicted direction (p < 0.001)"),
    (30, 0.99, "no evidence of an edge (p = 0.99)"),  # moved against the prediction: still no edge
]


@pytest.mark.parametrize("n,p,text", VERDICT_CASES)
def test_verdict_thresholds(n, p, text):
    assert S.verdict(n, p) == text


def test_backtest_json_carries_the_statistics_per_horizon(data_dir):
    proc = closebell("backtest", "--json", "--from", "2008-01-01", "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    rules = json.loads(proc.stdout)["rules"]
    trap = rules["small-cap-trap"]["forward"]["20"]
    assert 0 < trap["p_value"] <= 1
    low, high = trap["mean_interval"]
    assert low < trap["mean"] < high
    low, high = trap["hit_rate_interval"]
    assert low < trap["hit_rate"] < high
    assert trap["verdict"] == S.verdict(trap["known"], trap["p_value"])
    assert trap["verdict"].startswith("no evidence of an edge (p = ")  # 12 firings, +2.26% after a "down" call
    assert rules["soft-cpi-rotation"]["forward"]["5"]["verdict"] == "too few firings to say"
    text = closebell("backtest", "--from", "2008-01-01", "--data-dir", data_dir).stdout
    block = text.split("small-cap-trap [")[1].splitlines()
    assert block[1].startswith("  verdict: 20 sessions: no evidence of an edge (p = ")  # the report leads with it


# --- sweep with a holdout on a case built to overfit ----------------------------------------------

OVERFIT_RULES = """
rules:
  - id: band
    params: {lo: 150}
    when: SPY >= lo and SPY < lo + 2
    cooldown: 0
    benchmark: IWM
    direction: up
"""


@pytest.fixture(scope="module")
def overfit_dir(tmp_path_factory, iwm):
    """Noise with one planted in-sample 'edge': SPY wanders between 120 and 202 (a random walk of 6 a
    session, reflected at the ends); IWM is a random walk, except that before 2016 a session with SPY
    in [150, 152) is followed by a +1% day. From 2016 on the band means nothing."""
    days = iwm[(iwm.index >= "2008-01-01") & (iwm.index <= "2021-12-31")].index
    rng = np.random.default_rng(2024)
    level = np.empty(len(days))
    level[0] = 161.0
    for t, step in enumerate(rng.normal(0, 6, len(days) - 1), start=1):
        level[t] = level[t - 1] + step
        level[t] = 240 - level[t] if level[t] < 120 else 404 - level[t] if level[t] > 202 else level[t]
    daily = rng.normal(0.0003, 0.01, len(days))
    planted = (level >= 150) & (level < 152) & (days < "2016-01-01")
    daily[1:][planted[:-1]] += 0.01
    price = 100 * np.cumprod(1 + daily)
    folder = tmp_path_factory.mktemp("overfit")
    for name, values in (("SPY", level), ("IWM", price)):
        pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "value": np.round(values, 6)}).to_csv(
            folder / f"{name}.csv", index=False)
    (folder / "rules.yaml").write_text(OVERFIT_RULES)
    return folder


def test_sweep_holdout_warns_when_the_in_sample_edge_is_noise(overfit_dir):
    series = load_series(ROOT / "config" / "series.yaml")
    rules = loads_rules(OVERFIT_RULES, series)
    ev = prepare(rules, series, data_dir=str(overfit_dir)).evaluation
    values = [120 + 2 * k for k in range(41)]
    rows = sweep(rules, ev.frame, "band", {"lo": values}, holdout="2016-01-01", evaluation=ev)
    check = holdout_check(rows, "up")
    assert check.params["lo"] == 150 and check.tried == 41
    assert check.before.p_value < 0.001 and check.before.known >= S.MIN_FIRINGS
    assert check.after.known >= S.MIN_FIRINGS and check.after.p_value > S.ALPHA
    assert check.warning == f"best of 41 values in-sample; out of sample p = {check.after.p_value:.2f}: likely noise"
    proc = closebell("sweep", "band", "lo=120:200:2", "--holdout", "2016-01-01", "--rules", overfit_dir / "rules.yaml",
                     "--data-dir", overfit_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {check.warning}" in proc.stdout.splitlines()
    proc = closebell("sweep", "band", "lo=120:200:2", "--holdout", "2016-01-01", "--json", "--rules",
                     overfit_dir / "rules.yaml", "--data-dir", overfit_dir)
    rows = json.loads(proc.stdout)
    chosen = [row for row in rows if row.get("chosen_in_sample")]
    assert [row["params"]["lo"] for row in chosen] == [150]
    assert chosen[0]["holdout_warning"] == check.warning
    assert chosen[0]["after"]["forward"]["20"]["p_value"] == check.after.p_value
    assert all(row["forward"]["20"]["p_value"] is not None for row in rows if row["firings"])  # p beside each value
    assert f"warning: {check.warning}" in proc.stderr.splitlines()


def test_sweep_holdout_is_quiet_when_the_holdout_confirms(overfit_dir):
    """The same band with the holdout inside the planted years: the edge holds out of sample too."""
    series = load_series(ROOT / "config" / "series.yaml")
    rules = loads_rules(OVERFIT_RULES, series)
    ev = prepare(rules, series, data_dir=str(overfit_dir)).evaluation
    rows = sweep(rules, ev.frame, "band", {"lo": [140, 150, 160]}, end="2015-12-31", holdout="2012-01-01",
                 evaluation=ev)
    check = holdout_check(rows, "up")
    assert check.params["lo"] == 150 and check.confirmed and check.warning is None


def test_tune_preview_shows_the_20_session_verdict_before_and_after(data_dir):
    proc = closebell("tune", "small-cap-trap", "lead=3", "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "verdict" in x)
    # lead 5 -> 3 over all history: 14 firings -> many more; neither shows an edge for a "down" call
    assert line.startswith("  20-session verdict: no evidence of an edge (p = 0.")
    before, after = line.split(": ", 1)[1].split(" → ")
    assert before != after and after.startswith("no evidence of an edge (p = ")
