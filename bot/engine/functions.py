"""The functions rules may call, each a vectorized operation over every session at once.

Read the table `FUNCTIONS` top to bottom to see the whole vocabulary. Values
are float arrays over sessions with NaN for missing; conditions are float
arrays of 1.0 (true), 0.0 (false) and NaN (unknown: an input was missing).
Unknown follows Kleene's three-valued logic through `and`, `or` and `not`
(`false and unknown` is false, `true or unknown` is true, `not unknown` is
unknown), and a rule fires only where its condition is true.
`n` always counts sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

# parameter kinds
X = "x"  # any numeric expression: a series name, or arithmetic over series and functions
N = "n"  # a whole number of sessions, written as a literal
M = "m"  # a monthly series name
RULE = "rule"  # a rule id

MAX_WINDOW = 10_000


def is_window(value: float) -> bool:
    """A whole number of sessions from 1 to MAX_WINDOW."""
    return value == int(value) and 1 <= value <= MAX_WINDOW


@dataclass(frozen=True)
class Function:
    params: tuple[str, ...]
    returns: str  # "num" or "bool"
    impl: Callable
    doc: str

    @property
    def signature(self) -> str:
        names = {X: "x", N: "n", M: "monthly_series", RULE: "rule_id"}
        seen: dict[str, int] = {}
        parts = []
        for p in self.params:
            label = names[p]
            if p == X:
                label = "xyz"[seen.get(X, 0)] if self.params.count(X) > 1 else "x"
                seen[X] = seen.get(X, 0) + 1
            parts.append(label)
        return ", ".join(parts)


def shift(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if n < len(x):
        out[n:] = x[: len(x) - n]
    return out


def _rolling(x, n):
    return pd.Series(x, copy=False).rolling(n, min_periods=n)


def _truth(cond: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """1.0/0.0 where every input is known, NaN elsewhere."""
    out = cond.astype(float)
    for arr in inputs:
        out[np.isnan(arr)] = np.nan
    return out


def pct_change(x, n):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x / shift(x, n) - 1.0) * 100.0


def change(x, n):
    return x - shift(x, n)


def sma(x, n):
    return _rolling(x, n).mean().to_numpy()


def highest(x, n):
    return _rolling(x, n).max().to_numpy()


def lowest(x, n):
    return _rolling(x, n).min().to_numpy()


def drawdown(x, n):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x / highest(x, n) - 1.0) * 100.0


def zscore(x, n):
    std = _rolling(x, n).std(ddof=1).to_numpy(copy=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (x - sma(x, n)) / std
    out[~np.isfinite(out)] = np.nan
    return out


def corr(x, y, n):
    dx = pd.Series(change(x, 1))
    dy = pd.Series(change(y, 1))
    out = dx.rolling(n, min_periods=n).corr(dy).to_numpy(copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def crossed_above(a, b):
    a1, b1 = shift(a, 1), shift(b, 1)
    return _truth((a > b) & (a1 <= b1), a, b, a1, b1)


def crossed_below(a, b):
    a1, b1 = shift(a, 1), shift(b, 1)
    return _truth((a < b) & (a1 >= b1), a, b, a1, b1)


def lag(x, n):
    return shift(x, n)


def absolute(x):
    return np.abs(x)


def minimum(x, y):
    return np.minimum(x, y)  # NaN if either is NaN


def maximum(x, y):
    return np.maximum(x, y)


# Monthly and rule functions read the frame or other rules; the evaluator supplies them.
FUNCTIONS: dict[str, Function] = {
    "pct_change": Function((X, N), "num", pct_change, "% change over n sessions: (x_t / x_{t-n} - 1) * 100"),
    "change": Function((X, N), "num", change, "change over n sessions in the series' units (yields: points)"),
    "lag": Function((X, N), "num", lag, "the value n sessions ago"),
    "sma": Function((X, N), "num", sma, "mean of the last n sessions, t included"),
    "highest": Function((X, N), "num", highest, "highest of the last n sessions, t included"),
    "lowest": Function((X, N), "num", lowest, "lowest of the last n sessions, t included"),
    "drawdown": Function((X, N), "num", drawdown, "% below the highest of the last n sessions (<= 0)"),
    "zscore": Function((X, N), "num", zscore, "(x - sma) / sample standard deviation over n sessions"),
    "corr": Function((X, X, N), "num", corr, "correlation of the daily changes of x and y over n sessions"),
    "crossed_above": Function((X, X), "bool", crossed_above, "x rose above y on this session"),
    "crossed_below": Function((X, X), "bool", crossed_below, "x fell below y on this session"),
    "abs": Function((X,), "num", absolute, "absolute value"),
    "min": Function((X, X), "num", minimum, "the smaller of x and y"),
    "max": Function((X, X), "num", maximum, "the larger of x and y"),
    "mom_pct": Function((M,), "num", None, "% change of the latest released value over the previous month's"),
    "yoy_pct": Function((M,), "num", None, "% change of the latest released value over 12 months earlier"),
    "released": Function((M,), "bool", None, "true on the first session on or after each release date"),
    "fired": Function((RULE, N), "bool", None, "that rule fired within the last n sessions, t included"),
}
