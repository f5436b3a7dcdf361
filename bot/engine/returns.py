"""Forward returns and the spans they are judged over: the pieces every statistic about a rule shares.

backtest, explain, sweep, expectations, charts and significance all ask the same
questions of a rule: which series judges it (`benchmark_of`), which way it
predicts (`direction_of`), from which session it can be evaluated
(`first_evaluable`), what part of a window its rate covers, and how the
benchmark moved `horizon` sessions after each firing against the unconditional
move over the same span (`Returns`, `ForwardStats`). They live here, apart from
any one report, so each answers them the same way and none imports another's
report for a helper. Rounding (`rounded`, `rounded_json`) is here too: every
figure above is written with four places, as arrays.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Sequence

import numpy as np
import pandas as pd

from bot.engine import expr as E
from bot.engine import significance
from bot.engine.rules import DIRECTIONS, default_direction

HORIZONS = (5, 20)
SESSIONS_PER_YEAR = 252  # NYSE sessions in an average year: rates are per this many sessions


def benchmark_of(rule, frame) -> str | None:
    """The series whose forward returns judge a rule: its `benchmark`, else the first daily series it reads."""
    if rule.benchmark and rule.benchmark in frame.daily:
        return rule.benchmark
    return next((s for s in rule.series if s in frame.daily), None)


def direction_of(rule) -> str:
    """'up' or 'down': the move a rule predicts (declared, else down for warning/critical, up for info)."""
    declared = getattr(rule, "direction", None)
    if declared in DIRECTIONS:
        return declared
    return default_direction(rule.severity)


def forward_returns(values: np.ndarray, horizon: int) -> np.ndarray:
    """% change from each session to `horizon` sessions later (NaN where either end is missing)."""
    out = np.full(len(values), np.nan)
    if 0 < horizon < len(values):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:-horizon] = (values[horizon:] / values[:-horizon] - 1.0) * 100.0
    out[~np.isfinite(out)] = np.nan
    return out


def first_evaluable(context, rule, rules_by_id: dict | None = None, _cache: dict | None = None) -> int | None:
    """First session on which every series and window the rule reads is available, or None if none is.

    That is the first session on which every atom of its condition is known; an atom `fired(r, n)`
    is known from the first session rule r can be evaluated. (Under three-valued logic the rule's
    own value may be known earlier, e.g. `false and unknown`; this is the span its thesis covers.)
    """
    cache = {} if _cache is None else _cache
    if rule.id in cache:
        return cache[rule.id]
    cache[rule.id] = None  # guards against cycles (validation refuses them anyway)
    known = np.ones(len(context.frame), dtype=bool)
    start = 0
    for atom in E.atoms(rule.condition):
        if isinstance(atom, E.Call) and atom.func == "fired":
            dep = (rules_by_id or {}).get(atom.args[0].rule_id)
            if dep is not None:
                first = first_evaluable(context, dep, rules_by_id, cache)
                if first is None:
                    return None
                start = max(start, first)
            continue
        key = ("known", atom.key())  # a tuple: never a rule id; an atom shared by rules is looked at once
        mask = cache.get(key)
        if mask is None:
            mask = cache[key] = ~np.isnan(context.eval(atom))
        known &= mask
    known[:start] = False
    found = int(np.argmax(known)) if known.any() else None
    cache[rule.id] = found
    return found


def window(frame, start=None, end=None) -> tuple[int, int]:
    """Inclusive session positions [lo, hi] of the window (hi < lo when it holds no session)."""
    sessions = frame.sessions
    lo = 0 if start is None else int(sessions.searchsorted(pd.Timestamp(start), side="left"))
    hi = len(sessions) - 1 if end is None else int(sessions.searchsorted(pd.Timestamp(end), side="right")) - 1
    return lo, hi


def rate_span(first: int | None, fire_idx: np.ndarray, lo: int, hi: int) -> tuple[int, int] | None:
    """The part of the window [lo, hi] a rule's rate covers: from when it can be evaluated (or first
    fired, if three-valued logic let it fire earlier) to the window's end."""
    begin = first
    if len(fire_idx):
        begin = int(fire_idx[0]) if begin is None else min(begin, int(fire_idx[0]))
    if begin is None:
        return None
    begin = max(lo, begin)
    return (begin, hi) if begin <= hi else None


def per_year(count: int, span: tuple[int, int] | None) -> float | None:
    if span is None:
        return None
    return round(count / ((span[1] - span[0] + 1) / SESSIONS_PER_YEAR), 4)


def to_dates(sessions: pd.DatetimeIndex, idx: np.ndarray) -> list[date]:
    """Session positions -> datetime.date objects, without a Python loop over pandas Timestamps."""
    return sessions.values[idx].astype("datetime64[D]").astype(object).tolist()


def day_of(sessions, i) -> date | None:
    """Session position -> datetime.date, through numpy (a pandas Timestamp per call is slow in loops)."""
    return None if i is None else sessions.values[i].astype("datetime64[D]").item()


def round4(x) -> float | None:
    """A figure as reported: rounded to four places, None where it is missing or not finite."""
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def rounded(values: np.ndarray, digits: int = 4) -> list:
    """`[None if v is NaN else round(v, digits) for v in values]` as arrays, the same floats (nested lists
    for a 2-D array: one call rounds a rule's every horizon).

    Scaled, rounded to a whole number and scaled back as np.round does. That can round the other
    way from Python's round() (which rounds the exact value) only where the scaled value lies within
    rounding error of a half, or is too big for that error to be small: those few go through round()
    itself, so the JSON is byte for byte what the loop gave.
    """
    x = np.asarray(values, dtype=float)
    scale = 10.0 ** digits
    scaled = x * scale
    whole = np.rint(scaled)
    out = (whole / scale).astype(object)
    out[np.isnan(x)] = None
    with np.errstate(invalid="ignore"):
        unsure = np.abs(np.abs(scaled - whole) - 0.5) < 1e-9 * np.maximum(np.abs(scaled), 1.0)
    if unsure.any():
        flat, xs = out.reshape(-1), x.reshape(-1)
        for k in np.flatnonzero(unsure).tolist():
            flat[k] = round(float(xs[k]), digits)
    return out.tolist()


_POWERS = 10 ** np.arange(10, dtype=np.int32)


@functools.lru_cache(maxsize=4)
def _fractions(places: int) -> tuple[np.ndarray, np.ndarray]:
    """For every fraction 0 .. 10**places - 1: its characters after the point with trailing zeros as NUL
    (one digit at least: 0 is "0"), and how many characters that is."""
    fraction = np.arange(10 ** places, dtype=np.int32)
    chars = (48 + fraction[:, None] // _POWERS[places - 1::-1] % 10).astype(np.uint8)
    kept = np.full(len(fraction), places, dtype=np.int32)
    for j in range(1, places):
        kept -= fraction % _POWERS[j] == 0
    chars[np.arange(places) >= kept[:, None]] = 0
    return chars, kept


def rounded_json(values: np.ndarray, ends: Sequence[int], digits: int = 4) -> list[str]:
    """For each segment `values[ends[k-1]:ends[k]]` of a 1-D array (ends ascending, the last one its
    length), the text `json.dumps(rounded(segment, digits), separators=(",", ":"))` gives, made as arrays.

    Python's repr of a float rounded to `digits` places below 1e9 (and, when not 0, at least 1e-4) is
    its decimal digits with trailing zeros dropped ("2.5", "-0.0", "12.8286"). Those are written into a
    byte matrix, one row per value and one column per character place, with NUL where a row has no
    character (leading and trailing zeros, a plus sign); dropping the NULs leaves the JSON. NaN is
    null; anything else (a value near a rounding half, huge or tiny, infinite) goes through round()
    and json.dumps itself. Worth it over many values at once (the backtest formats a chunk of rules'
    firings per call): float repr is the costliest part of the JSON of 300,000 firings.
    """
    if not 0 <= digits <= 6:
        raise ValueError(f"rounded_json formats 0 to 6 places, not {digits}")
    x = np.asarray(values, dtype=float)
    total = len(x)
    scale = 10 ** digits
    places = max(digits, 1)  # characters after the point before trailing zeros are dropped ("3.0" for 0)
    scaled = x * scale
    whole = np.rint(scaled)
    missing = np.isnan(x)
    with np.errstate(invalid="ignore"):
        plain = np.abs(np.abs(scaled - whole) - 0.5) >= 1e-9 * np.maximum(np.abs(scaled), 1.0)  # not NaN
    plain &= (np.abs(whole) < 1e9 * scale) & ((whole == 0) | (np.abs(whole) >= scale / 1e4))
    texts = {k: json.dumps(round(float(x[k]), digits)) + "," for k in np.flatnonzero(~plain & ~missing).tolist()}
    units, fraction = np.divmod(np.where(plain, np.abs(whole), 0).astype(np.int64), scale)
    units, fraction = units.astype(np.int32), fraction.astype(np.int32)  # below 1e9 and 10**digits
    size = 1 + np.searchsorted(_POWERS[1:], units, side="right")  # digits before the point
    chars, kept = _fractions(places)
    left = int(size.max()) if total else 1
    width = max([len(t) for t in texts.values()] + [left + places + 3])  # sign, digits, point, digits, comma
    matrix = np.zeros((total, width), dtype=np.uint8)
    minus = plain & np.signbit(whole)
    matrix[:, 0] = np.where(minus, ord("-"), 0)
    for i in range(left):  # the i-th digit leftwards from the point, right-aligned; no leading zero
        matrix[:, left - i] = np.where(i < size, 48 + units // _POWERS[i] % 10, 0)
    matrix[:, left + 1] = ord(".")
    matrix[:, left + 2:left + 2 + places] = chars[fraction]
    matrix[:, left + 2 + places] = ord(",")
    length = minus + size + 2 + kept[fraction]  # characters each row keeps, its comma included
    if missing.any():
        matrix[missing] = np.frombuffer(b"null,".ljust(width, b"\0"), np.uint8)
        length[missing] = 5
    for k, text in texts.items():
        matrix[k] = np.frombuffer(text.encode("ascii").ljust(width, b"\0"), np.uint8)
        length[k] = len(text)
    text = matrix[matrix != 0].tobytes().decode("ascii")
    offsets = np.concatenate(([0], np.cumsum(length)))[list(ends)].tolist()
    out, begin = [], 0
    for end in offsets:
        out.append("[" + text[begin:end - 1] + "]" if end > begin else "[]")
        begin = end
    return out


class Days:
    """The frame's sessions as dates, converted once and then picked by position: a report of 300,000
    firings makes no pandas Timestamp, and formats no date it does not print."""

    def __init__(self, sessions: pd.DatetimeIndex):
        self.sessions = sessions
        self._days = self._iso = None

    @property
    def days(self) -> np.ndarray:
        if self._days is None:
            self._days = self.sessions.values.astype("datetime64[D]")
        return self._days

    def day(self, i: int | None) -> date | None:
        return None if i is None else self.days[i].item()

    def dates(self, idx: np.ndarray) -> list[date]:
        return self.days[idx].astype(object).tolist()

    def iso(self, idx: np.ndarray) -> list[str]:
        """'2024-07-11' per position; every session formatted once, by pandas' fast path for this format."""
        if self._iso is None:
            self._iso = np.asarray(self.sessions.strftime("%Y-%m-%d"), dtype=object)
        return self._iso[idx].tolist()


@dataclass(frozen=True)
class ForwardStats:
    """The benchmark's move `horizon` sessions after firings, and the same over every session of the span."""

    horizon: int
    known: int  # firings whose forward return is inside the data
    mean: float | None  # mean % forward return after firings
    positive: float | None  # share of those returns above zero
    hit_rate: float | None  # share that moved in the rule's direction
    baseline: float | None  # unconditional mean % forward return over the same span
    baseline_hit_rate: float | None  # unconditional share of sessions followed by a move in that direction
    # how sure those figures are (bot.engine.significance)
    p_value: float | None = None  # share of random timings doing as well in the rule's direction
    mean_interval: tuple[float, float] | None = None  # 90% bootstrap interval of `mean`
    hit_rate_interval: tuple[float, float] | None = None  # 90% Wilson interval of `hit_rate`
    verdict: str = "too few firings to say"

    def to_json(self) -> dict:
        return {"known": self.known, "mean": self.mean, "positive": self.positive, "hit_rate": self.hit_rate,
                "baseline": self.baseline, "baseline_hit_rate": self.baseline_hit_rate, "p_value": self.p_value,
                "mean_interval": _pair(self.mean_interval), "hit_rate_interval": _pair(self.hit_rate_interval),
                "verdict": self.verdict}


def _known_within(fwd: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    part = fwd[span[0]:span[1] + 1]
    return part[~np.isnan(part)]


def _pair(pair) -> list | None:
    return None if pair is None else [round4(pair[0]), round4(pair[1])]


class Returns:
    """Forward returns of one benchmark at each horizon, with running sums so any span's baseline is O(1)."""

    def __init__(self, values: np.ndarray, horizons: Sequence[int]):
        self.by_horizon = {}
        self.assessor = significance.Assessor()  # null distributions and intervals, once per case
        for h in horizons:
            fwd = forward_returns(values, h)
            known = ~np.isnan(fwd)
            sums = np.concatenate(([0.0], np.cumsum(np.where(known, fwd, 0.0))))
            counts = np.concatenate(([0], np.cumsum(known)))
            ups = np.concatenate(([0], np.cumsum(fwd > 0)))
            downs = np.concatenate(([0], np.cumsum(fwd < 0)))
            self.by_horizon[h] = (fwd, sums, counts, ups, downs)

    def stats(self, idx: np.ndarray, span: tuple[int, int] | None, direction: str) -> dict[int, ForwardStats]:
        return self.stats_many([(idx, span, direction)])[0]

    def stats_many(self, groups: Sequence[tuple[np.ndarray, tuple[int, int] | None, str]]) \
            -> list[dict[int, ForwardStats]]:
        """`stats` for many (firing positions, span, direction) at once: one gather and one running count
        over all their firings per horizon instead of a dozen array calls per rule. Each mean is still
        the sum of that rule's own known returns in order, so every figure is what `stats` gave alone."""
        out: list[dict[int, ForwardStats]] = [{} for _ in groups]
        if not groups:
            return out
        every = np.concatenate([np.asarray(g[0], dtype=np.intp) for g in groups])
        bounds = np.concatenate(([0], np.cumsum([len(g[0]) for g in groups])))
        for h, (fwd, sums, counts, ups, downs) in self.by_horizon.items():
            after = fwd[every]
            known = after == after  # NaN: past the end of the data, or a gap
            kept = after[known]
            # running counts over all firings, read at each rule's bounds: a rule's count is the difference
            ends = np.concatenate(([0], np.cumsum(known)))[bounds]  # bounds of each rule's known returns
            rises_at = np.concatenate(([0], np.cumsum(kept > 0)))[ends].tolist()
            falls_at = np.concatenate(([0], np.cumsum(kept < 0)))[ends].tolist()
            ends = ends.tolist()
            for g, (_idx, span, direction) in enumerate(groups):
                up = direction == "up"
                a, b = ends[g], ends[g + 1]
                n = b - a
                mean = positive = hit = base = base_hit = None
                p = interval = hit_interval = None
                if n:
                    rises = rises_at[g + 1] - rises_at[g]
                    mean = float(kept[a:b].sum()) / n
                    positive = rises / n
                    hits = rises if up else falls_at[g + 1] - falls_at[g]
                    hit = hits / n
                    interval = self.assessor.interval(h, kept[a:b])
                    hit_interval = significance.wilson(hits, n)
                    if span is not None:  # random timing draws from the span's sessions with a known return
                        pool = functools.partial(_known_within, fwd, span)
                        p = self.assessor.null(h, span, n, pool).p_value(mean, direction)
                if span is not None:
                    lo, hi = span[0], span[1] + 1
                    c = int(counts[hi] - counts[lo])
                    if c:
                        base = float(sums[hi] - sums[lo]) / c
                        moved = ups if up else downs
                        base_hit = float(moved[hi] - moved[lo]) / c
                out[g][h] = ForwardStats(h, n, round4(mean), round4(positive), round4(hit), round4(base),
                                         round4(base_hit), round4(p), interval, hit_interval,
                                         significance.verdict(n, p))
        return out


class ReturnsCache:
    """One `Returns` per benchmark series, shared by every rule that reads it."""

    def __init__(self, frame, horizons: Sequence[int]):
        self.frame, self.horizons, self._by_series = frame, tuple(horizons), {}

    def get(self, series: str | None) -> Returns | None:
        if series is None:
            return None
        if series not in self._by_series:
            self._by_series[series] = Returns(self.frame.series(series), self.horizons)
        return self._by_series[series]
