"""How sure a backtest figure is: a p-value against random timing, intervals, and a verdict in words.

"IWM 20 sessions later +2.26% on average vs +0.92% unconditional" over 12
firings reads like an edge; with 12 noisy returns it may be nothing. Beside
each mean and hit rate the report therefore says how often *random timing*
does as well, and how wide the figure's uncertainty is:

- **p-value against random timing.** Draw as many sessions as the rule has
  firings with a known forward return, without replacement, from the sessions
  of its span that have one (the pool); the p-value is the share of draws
  whose mean forward return is at least as far in the rule's direction as the
  rule's own, counting the rule's own timing as one draw ((1 + k) / (1 + N),
  never 0). One-sided: `up` counts draws at least as high, `down` at least as
  low. A rule without a declared `direction` is judged in the direction the
  report already uses for it (down for warning/critical, up for info: see
  bot.engine.report.direction_of), so every rule has exactly one side.
- **90% interval for the mean** (percentile bootstrap over the firings'
  returns) and a **90% Wilson interval** for the hit rate.
- **A verdict**: "too few firings to say" under MIN_FIRINGS; else "edge in the
  predicted direction (p = 0.02)" when p <= ALPHA, "no evidence of an edge
  (p = 0.41)" otherwise.

The null distribution depends only on the pool and the number of firings, so
it is computed once per distinct (benchmark, span, horizon, n) and read by
every rule of that case (a book of 1,000 rules has a few hundred cases).

**Cost, and where resampling stops.** N = 10,000 draws of n sessions cost
10,000 x n gathers; a benchmark book has rules firing thousands of times,
where that would be seconds per rule. Up to EXACT_MAX firings (the small
samples where shape matters) both figures are resampled as defined above,
drawn as one index matrix per case, in blocks, with no Python loop per draw.
Above it the sampling distribution of a mean of n > 30 values is close to
normal, and both figures use its first three exact cumulants: for the
p-value, the exact variance and third cumulant of the sum of a sample drawn
without replacement from the pool (finite population), for the bootstrap the
exact ones of the resampled mean, each with the one-term Edgeworth
(Cornish-Fisher) skewness correction. tests/test_significance.py holds both
regimes to a 200,000-draw reference computed there by another method, on the
real returns, within +-0.02. Every draw uses a seed made of SEED and the
case, so a rule's figures do not depend on which other rules are in the book.
"""

from __future__ import annotations

import math

import numpy as np

DRAWS = 10_000  # random-timing draws per case (the p-value's resolution is 1e-4)
BOOTSTRAP = 10_000  # bootstrap resamples for the mean's interval
EXACT_MAX = 30  # up to this many firings both are resampled; above, the three-cumulant expansions
MIN_FIRINGS = 8  # fewer known forward returns: "too few firings to say"
ALPHA = 0.05  # p at or below it: "edge in the predicted direction"
LEVEL = 0.90  # both intervals
SEED = 20_240_711  # the soft-CPI day; any fixed number would do
_Z = 1.6448536269514722  # the standard normal's 95% quantile: the two-sided 90% intervals
_BLOCK = 2_000  # draws per index matrix: 2,000 x 30 indices at a time


def _rng(*case: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *case])


def _sample_sums(pool: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of `draws` samples of `n` values of `pool` drawn without replacement (n < len(pool)).

    Each block draws an index matrix with replacement and redraws the rows that picked a position
    twice (a row without repeats is a uniform n-subset); where repeats would be common (n*n > len(pool)),
    Floyd's algorithm builds the subsets column by column instead, for all rows at once.
    """
    size = len(pool)
    out = np.empty(draws)
    for begin in range(0, draws, _BLOCK):
        rows = min(_BLOCK, draws - begin)
        if n * n <= size:
            idx = rng.integers(0, size, size=(rows, n))
            while True:
                ordered = np.sort(idx, axis=1)
                again = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
                if not again.any():
                    break
                idx[again] = rng.integers(0, size, size=(int(again.sum()), n))
        else:  # Floyd: for j = size-n .. size-1 take t in [0, j], or j itself when t is taken already
            idx = np.empty((rows, n), dtype=np.int64)
            for col, j in enumerate(range(size - n, size)):
                t = rng.integers(0, j + 1, size=rows)
                taken = (idx[:, :col] == t[:, None]).any(axis=1)
                idx[:, col] = np.where(taken, j, t)
        out[begin:begin + rows] = pool[idx].sum(axis=1)
    return out


class Null:
    """The random-timing distribution of one case: `n` sessions from `pool` (the forward returns known
    on the span's sessions), for any observed mean and direction."""

    def __init__(self, pool: np.ndarray, n: int, case: tuple[int, ...] = ()):
        self.pool, self.n, self.size = pool, n, len(pool)
        self.sums = None
        if 0 < n < self.size and min(n, self.size - n) <= EXACT_MAX:
            k = min(n, self.size - n)  # many firings: the sessions *not* drawn are the small sample
            sums = _sample_sums(pool, k, DRAWS, _rng(1, self.size, n, *case))
            if k != n:
                sums = float(pool.sum()) - sums
            self.sums = np.sort(sums)
        elif n < self.size:
            centred = pool - pool.mean()
            self.mu, self.m2, self.m3 = float(pool.mean()), float(np.mean(centred ** 2)), float(np.mean(centred ** 3))

    def p_value(self, mean: float, direction: str) -> float:
        """Share of random timings at least as far in `direction` as `mean`, the rule's own included."""
        n, size = self.n, self.size
        if n >= size:
            return 1.0  # fired on every session of the pool: any timing is the same timing
        total = mean * n
        tol = 1e-9 * max(1.0, abs(total))  # the same sum added in another order
        if self.sums is not None:
            if direction == "up":
                k = len(self.sums) - int(np.searchsorted(self.sums, total - tol, side="left"))
            else:
                k = int(np.searchsorted(self.sums, total + tol, side="right"))
            return (1 + k) / (1 + len(self.sums))
        sign = 1.0 if direction == "up" else -1.0
        var = n * (size - n) / (size - 1) * self.m2
        if var <= 0:
            return 1.0 if sign * (total - n * self.mu) <= tol else 1 / (1 + DRAWS)
        k3 = sign * n * (size - n) * (size - 2 * n) / ((size - 1) * (size - 2)) * self.m3 if size > 2 else 0.0
        z = sign * (total - n * self.mu) / math.sqrt(var)
        gamma = k3 / var ** 1.5
        tail = 0.5 * math.erfc(z / math.sqrt(2)) + gamma / 6 * (z * z - 1) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        return min(1.0, max(1 / (1 + DRAWS), tail))


def mean_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float] | None:
    """90% percentile bootstrap interval of the mean of `values` (None for fewer than two)."""
    n = len(values)
    if n < 2:
        return None
    if n <= EXACT_MAX:
        rng = _rng(2, n, seed)
        means = values[rng.integers(0, n, size=(BOOTSTRAP, n))].mean(axis=1)
        low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        return float(low), float(high)
    mean = float(values.mean())
    centred = values - mean
    m2, m3 = float(np.mean(centred ** 2)), float(np.mean(centred ** 3))
    if m2 <= 0:
        return mean, mean
    sd = math.sqrt(m2 / n)
    skew = m3 / m2 ** 1.5 / math.sqrt(n)  # of the resampled mean: the sample's skewness / sqrt(n)
    return tuple(mean + sd * (z + skew / 6 * (z * z - 1)) for z in (-_Z, _Z))


def wilson(hits: int, n: int) -> tuple[float, float] | None:
    """90% Wilson score interval for `hits` successes in `n` trials (None for none)."""
    if n <= 0:
        return None
    share, z2 = hits / n, _Z * _Z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z / (1 + z2 / n) * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def verdict(n: int, p: float | None) -> str:
    """The figure in words: too few firings, no evidence, or an edge in the predicted direction."""
    if n < MIN_FIRINGS or p is None:
        return "too few firings to say"
    if p <= ALPHA:
        return f"edge in the predicted direction ({format_p(p)})"
    return f"no evidence of an edge ({format_p(p)})"


class Assessor:
    """The figures of many rules over one benchmark's forward returns, each null distribution computed
    once per (horizon, span, n) and each bootstrap once per set of returns."""

    def __init__(self):
        self._nulls: dict = {}
        self._intervals: dict = {}

    def null(self, horizon: int, span: tuple[int, int], n: int, pool) -> Null:
        key = (horizon, span, n)
        found = self._nulls.get(key)
        if found is None:
            found = self._nulls[key] = Null(pool(), n, (horizon,))
        return found

    def interval(self, horizon: int, values: np.ndarray):
        key = (horizon, values.tobytes())
        if key not in self._intervals:
            self._intervals[key] = mean_interval(values, horizon)
        return self._intervals[key]
