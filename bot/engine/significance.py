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
  bot.engine.returns.direction_of), so every rule has exactly one side.
- **90% interval for the mean** (percentile bootstrap over the firings'
  returns) and a **90% Wilson interval** for the hit rate.
- **A verdict**: "too few firings to say" under MIN_FIRINGS; else "edge in the
  predicted direction (p = 0.02)" when p <= ALPHA, "no evidence of an edge
  (p = 0.41)" otherwise.

The null distribution depends only on the pool and the number of firings, so
it is computed once per distinct (benchmark, span, horizon, n) and read by
every rule of that case (a book of 1,000 rules has a few hundred cases).

**Cost, and where resampling stops.** 10,000 draws of n sessions cost
10,000 x n gathers; a benchmark book has rules firing thousands of times,
where that would be seconds per rule (the 100-rule book: 126 cases, 61,000
firings, about 500 million gathers, against a budget of half the import
floor). Up to EXACT_MAX firings (the small samples, where the shape of the
returns matters most) both figures are resampled as defined above: one index
matrix per pool, 10,000 rows drawn at once (no Python loop per draw), whose
running sums serve every n of that pool, and n near the pool's size by its
complement. Above it the mean of n > 20 values is close to normal, and both
figures use its first three exact cumulants: for the p-value, the exact
variance and third cumulant of the sum of a sample drawn without replacement
from the pool (finite population: n (M-n)/(M-1) m2 and
n (M-n)(M-2n)/((M-1)(M-2)) m3), for the bootstrap those of the resampled mean
(m2/n, m3/n^2), each with the one-term Edgeworth (Cornish-Fisher) skewness
correction. This is not provably the Monte Carlo figure; tests/test_significance.py
holds both regimes, on the real returns, to a 200,000-draw reference computed
there by another method, within +-0.02 (just above the switch, at n = 21, too).
Every draw uses a seed made of SEED and the case (pool size, horizon), so a
rule's figures do not depend on which other rules are in the book.

**What random timing does not cover.** Firings that cluster (cooldown 0, a
condition that holds for days) have overlapping forward windows: their returns
are not independent, the null's are, so a clustered rule's p-value is too
small. A rule's cooldown at least its horizon avoids it.
"""

from __future__ import annotations

import math

import numpy as np

DRAWS = 10_000  # random-timing draws per case (the p-value's resolution is 1e-4)
BOOTSTRAP = 4_000  # bootstrap resamples for the mean's interval (its 5% and 95% quantiles move by ~1%
# of the interval's width from one seed to another)
EXACT_MAX = 20  # up to this many firings both are resampled; above, the three-cumulant expansions
MIN_FIRINGS = 8  # fewer known forward returns: "too few firings to say"
ALPHA = 0.05  # p at or below it: "edge in the predicted direction"
LEVEL = 0.90  # both intervals
SEED = 20_240_711  # the soft-CPI day; any fixed number would do
_Z = 1.6448536269514722  # the standard normal's 95% quantile: the two-sided 90% intervals


def _rng(*case: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *case])


class Pool:
    """The forward returns random timing draws from: their moments (for the expansions, once) and the
    resampled sums of 1 .. EXACT_MAX of them, drawn once when the first case asks.

    Column j of the index matrix is uniform among the positions its row has not taken in columns
    0..j-1, so the first k columns of each row are a uniform k-subset of the pool, drawn without
    replacement, and their running sum is a draw of the sum for every k <= EXACT_MAX at once. The
    matrix depends only on the pool's size and the case's seed, never on which n are asked for, so a
    case's p-value is the same whatever other cases share the pool.
    """

    def __init__(self, values: np.ndarray, case: tuple[int, ...] = ()):
        self.values, self.size, self.case = values, len(values), case  # case: seeds this pool's draws
        self.total = float(values.sum())
        mu = self.total / self.size if self.size else 0.0
        centred = values - mu
        squares = centred * centred
        self.moments = (mu, float(squares.mean()) if self.size else 0.0,
                        float((squares * centred).mean()) if self.size else 0.0)
        self._sums = None

    def sums(self, k: int) -> np.ndarray:
        """DRAWS sums of k pool values drawn without replacement (k <= EXACT_MAX, k < size)."""
        if self._sums is None:
            self._sums = self._draw(min(EXACT_MAX, self.size))
        return self._sums[k - 1]

    def _draw(self, width: int) -> np.ndarray:
        """Running sums over `width` columns of positions, each column distinct from those before it.

        Every column is first drawn for all rows at once; only the rows holding a position twice
        (about n*n/2/size of them: 3% at n = 20 over 6,500 sessions) are then walked column by column,
        all of them at once, redrawing a column that repeats an earlier one until it does not: column j
        is then uniform over the positions columns 0..j-1 left, which is drawing without replacement.
        """
        rng = _rng(1, self.size, *self.case)
        kind = np.int16 if self.size <= np.iinfo(np.int16).max else np.int32
        idx = rng.integers(0, self.size, size=(DRAWS, width), dtype=kind)
        ordered = np.sort(idx, axis=1)
        rows = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        fix = idx[rows]
        for j in range(1, width):
            clash = np.flatnonzero((fix[:, :j] == fix[:, j:j + 1]).any(axis=1))
            while len(clash):
                fix[clash, j] = rng.integers(0, self.size, size=len(clash), dtype=kind)
                clash = clash[(fix[clash, :j] == fix[clash, j:j + 1]).any(axis=1)]
        idx[rows] = fix
        sums = self.values[idx.T]  # row k-1 becomes the sums of k; a row at a time (np.cumsum along the
        for j in range(1, width):  # short axis is several times slower)
            sums[j] += sums[j - 1]
        return sums


class Null:
    """The random-timing distribution of one case: `n` sessions from a `Pool` (the forward returns
    known on the span's sessions), for any observed mean and direction."""

    def __init__(self, pool: Pool, n: int):
        self.n, self.size = n, pool.size
        self.mu, self.m2, self.m3 = pool.moments
        self.sums = None
        if 0 < n < self.size and min(n, self.size - n) <= EXACT_MAX:
            k = min(n, self.size - n)  # many firings: the sessions *not* drawn are the small sample
            self.sums = pool.sums(k) if k == n else pool.total - pool.sums(k)

    def p_value(self, mean: float, direction: str) -> float:
        """Share of random timings at least as far in `direction` as `mean`, the rule's own included."""
        n, size = self.n, self.size
        if n >= size:
            return 1.0  # fired on every session of the pool: any timing is the same timing
        total = mean * n
        tol = 1e-9 * max(1.0, abs(total))  # the same sum added in another order
        if self.sums is not None:
            k = int(np.count_nonzero(self.sums >= total - tol if direction == "up" else self.sums <= total + tol))
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


def has_edge(n: int, p: float | None) -> bool:
    """Enough firings to judge, and a p-value at or below ALPHA."""
    return n >= MIN_FIRINGS and p is not None and p <= ALPHA


def verdict(n: int, p: float | None) -> str:
    """The figure in words: too few firings, no evidence, or an edge in the predicted direction."""
    if n < MIN_FIRINGS or p is None:
        return "too few firings to say"
    if has_edge(n, p):
        return f"edge in the predicted direction ({format_p(p)})"
    return f"no evidence of an edge ({format_p(p)})"


class Assessor:
    """The figures of many rules over one benchmark's forward returns, each null distribution computed
    once per (horizon, span, n) and each bootstrap once per set of returns."""

    def __init__(self):
        self._nulls: dict = {}
        self._pools: dict = {}
        self._intervals: dict = {}

    def null(self, horizon: int, span: tuple[int, int], n: int, pool) -> Null:
        """The case's null; `pool()` gives the span's known forward returns when the pool is new."""
        key = (horizon, span, n)
        found = self._nulls.get(key)
        if found is None:
            if (horizon, span) not in self._pools:
                self._pools[horizon, span] = Pool(pool(), (horizon,))
            found = self._nulls[key] = Null(self._pools[horizon, span], n)
        return found

    def interval(self, horizon: int, values: np.ndarray):
        key = (horizon, values.tobytes())
        if key not in self._intervals:
            self._intervals[key] = mean_interval(values, horizon)
        return self._intervals[key]
