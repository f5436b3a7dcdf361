"""What a backtest says about each rule: its span, rate, and the benchmark's moves after its firings.

A user decides from a backtest whether a rule says anything, so per rule it
reports the span the rule could actually be evaluated over (not the oldest
series in the file), firings per year over that span, and the benchmark's
mean forward return after firings *beside* the unconditional mean over the
same span. Every number comes from index arithmetic on whole columns (the
shared pieces in bot.engine.returns); only the firings a caller asks to see
get their messages rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Sequence

import numpy as np

from bot.engine.returns import (HORIZONS, Days, ForwardStats, ReturnsCache, benchmark_of, direction_of,
                                first_evaluable, forward_returns, per_year, rate_span, round4, window)


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()



@dataclass(frozen=True)
class Firing:
    """One firing, rendered on request only."""

    date: date
    index: int  # session position in the frame
    forward: dict[int, float | None]  # % return of the benchmark after it, per horizon
    values: dict[str, float | None]  # each function the condition calls, on that session
    message: str

    def to_json(self) -> dict:
        return {"date": self.date.isoformat(), "forward_returns": {str(h): v for h, v in self.forward.items()},
                "values": self.values, "message": self.message}


@dataclass
class RuleReport:
    rule: str
    title: str
    severity: str
    benchmark: str | None
    direction: str  # 'up' | 'down'
    evaluable_from: date | None  # first session all its series and windows are available
    span_from: date | None  # the part of the window its rate covers (None: never evaluable there)
    span_to: date | None
    sessions: int  # sessions in that span
    firings: int  # firings in the window
    per_year: float | None  # firings per year over the span
    forward: dict[int, ForwardStats]
    indices: np.ndarray = field(repr=False, compare=False)  # session positions of every firing in the window
    _evaluation: Any = field(default=None, repr=False, compare=False)
    _returns: Any = field(default=None, repr=False, compare=False)  # the benchmark's Returns (shared)
    _days: Any = field(default=None, repr=False, compare=False)  # Days of the frame (shared)

    @property
    def dates(self) -> list[date]:
        """Every firing in the window, as dates (made when asked: JSON needs only their text)."""
        days = self._days or Days(self._evaluation.frame.sessions)
        return days.dates(self.indices)

    def firing_details(self, which: Iterable[int] | slice | None = None) -> list[Firing]:
        """Firings with values and rendered messages: `which` picks positions in `dates`
        (e.g. slice(-10, None) for the last ten); None renders every one."""
        positions = range(len(self.indices))
        chosen = positions[which] if isinstance(which, slice) else (positions if which is None else which)
        ev = self._evaluation
        dates = self.dates
        rule = ev.rule(self.rule)
        bench = ev.frame.series(self.benchmark) if self.benchmark else None
        out = []
        for p in chosen:
            i = int(self.indices[p])
            fwd = {h: (round4(forward_returns(bench[i:i + h + 1], h)[0]) if bench is not None else None)
                   for h in self.forward}
            values = {k: round4(v) for k, v in ev.values(rule, i).items()}
            out.append(Firing(dates[p], i, fwd, values, ev.message(rule, i)))
        return out

    def forward_returns(self) -> dict[int, np.ndarray]:
        """The benchmark's % return after each firing, per horizon, as arrays aligned with `dates`."""
        if not self.benchmark:
            return {h: np.full(len(self.indices), np.nan) for h in self.forward}
        if self._returns is not None:  # computed once per benchmark by summarize
            return {h: self._returns.by_horizon[h][0][self.indices] for h in self.forward}
        values = self._evaluation.frame.series(self.benchmark)
        return {h: forward_returns(values, h)[self.indices] for h in self.forward}

    def iso_dates(self) -> list[str]:
        """`dates` as ISO strings, formatted as arrays."""
        days = self._days or Days(self._evaluation.frame.sessions)
        return days.iso(self.indices)

    def to_json(self) -> dict:
        return {"rule": self.rule, "title": self.title, "severity": self.severity, "benchmark": self.benchmark,
                "direction": self.direction, "evaluable_from": _iso(self.evaluable_from),
                "from": _iso(self.span_from), "to": _iso(self.span_to), "sessions": self.sessions,
                "firings": self.firings, "per_year": self.per_year,
                "forward": {str(h): s.to_json() for h, s in self.forward.items()},
                "dates": self.iso_dates()}


def summarize(evaluation, start=None, end=None, horizons: Sequence[int] = HORIZONS,
              rules: Sequence | None = None) -> list[RuleReport]:
    """Per rule (all of the evaluation's, or `rules`): the report over the window [start, end].

    The window limits what is reported, not what is computed: values on each day use data up to
    that day, and forward returns may look past `end`.
    """
    frame, context = evaluation.frame, evaluation.context
    lo, hi = window(frame, start, end)
    whole = lo == 0 and hi == len(frame) - 1
    by_id = {r.id: r for r in evaluation.rules}
    cache: dict = {}
    returns = ReturnsCache(frame, horizons)
    days = Days(frame.sessions)
    rows = []
    for rule in (rules if rules is not None else evaluation.rules):
        idx = np.flatnonzero(evaluation.fires[rule.id])
        if not whole:
            idx = idx[(idx >= lo) & (idx <= hi)]
        first = first_evaluable(context, rule, by_id, cache)
        rows.append((rule, idx, first, rate_span(first, idx, lo, hi), benchmark_of(rule, frame)))
    # forward-return figures in one pass per benchmark over all its rules' firings
    stats: list = [None] * len(rows)
    by_bench: dict[str, list[int]] = {}
    for k, (rule, _idx, _first, _span, bench) in enumerate(rows):
        if bench:
            by_bench.setdefault(bench, []).append(k)
        else:
            stats[k] = {h: ForwardStats(h, 0, None, None, None, None, None) for h in horizons}
    for bench, ks in by_bench.items():
        groups = [(rows[k][1], rows[k][3], direction_of(rows[k][0])) for k in ks]
        for k, figures in zip(ks, returns.get(bench).stats_many(groups)):
            stats[k] = figures
    out = []
    for (rule, idx, first, span, bench), forward in zip(rows, stats):
        out.append(RuleReport(
            rule=rule.id, title=rule.title, severity=rule.severity, benchmark=bench, direction=direction_of(rule),
            evaluable_from=days.day(first),
            span_from=days.day(span[0]) if span else None,
            span_to=days.day(span[1]) if span else None,
            sessions=(span[1] - span[0] + 1) if span else 0, firings=len(idx), per_year=per_year(len(idx), span),
            forward=forward, indices=idx, _evaluation=evaluation, _returns=returns.get(bench), _days=days))
    return out
