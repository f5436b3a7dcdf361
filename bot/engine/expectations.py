"""Golden-episode tests: rules checked against real days, like `promtool test rules` on real history.

A tests file (`config/rules.test.yaml`, loaded by `bot.settings.rules_tests_file`)
states what each rule must do on real days: fire within a window, stay quiet in
another, fire on given sessions, fire at most N times a year. Checking is pure
and reads one evaluation, so `test-rules` costs one backtest. A failure names
the tests file's line, what was expected, what happened, the nearest firing,
and the `explain` command that shows why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

import numpy as np
import pandas as pd

from bot.engine.returns import first_evaluable, per_year, rate_span, window

KINDS = ("fires_within", "quiet_within", "fires", "quiet", "at_most_per_year", "at_least_per_year")
EXPLAIN_COMMAND = "closebell explain {rule} --date {date}"


@dataclass(frozen=True)
class Expectation:
    """One expectation about one rule, with where the tests file states it."""

    rule: str
    kind: str  # one of KINDS
    dates: tuple[date, ...] = ()  # the window [from, to] (…_within) or the sessions (fires / quiet)
    limit: float | None = None  # the rate for …_per_year
    start: date | None = None  # an item's optional from:/to: limit the span a rate is measured over
    end: date | None = None
    file: str = "<tests>"
    line: int = 0
    col: int = 0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def text(self) -> str:
        """The expectation as the file spells it."""
        if self.kind.endswith("_per_year"):
            return f"{self.kind}: {self.limit:g}"
        return f"{self.kind}: [{', '.join(d.isoformat() for d in self.dates)}]"

    @property
    def expected(self) -> str:
        """The expectation in words."""
        d = [x.isoformat() for x in self.dates]
        span = ""
        if self.start or self.end:
            span = f" over {self.start or 'the start'}..{self.end or 'the end'}"
        return {
            "fires_within": lambda: f"a firing in {d[0]}..{d[-1]}",
            "quiet_within": lambda: f"no firing in {d[0]}..{d[-1]}",
            "fires": lambda: f"a firing on {d[0]}" if len(d) == 1 else f"a firing on each of {', '.join(d)}",
            "quiet": lambda: f"no firing on {', '.join(d)}",
            "at_most_per_year": lambda: f"at most {self.limit:g} firings a year{span}",
            "at_least_per_year": lambda: f"at least {self.limit:g} firings a year{span}",
        }[self.kind]()


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    ok: bool
    happened: str  # what the data says, e.g. "none", "2 firings: 2024-06-03, 2024-06-20", "7.31 a year …"
    nearest: date | None = None  # the nearest firing to a window or date that saw none
    explain_date: date | None = None  # the session `explain` should look at
    skipped: bool = False  # outside the --from/--to window: nothing to check
    explain_command: str = EXPLAIN_COMMAND

    @property
    def rule(self) -> str:
        return self.expectation.rule

    @property
    def where(self) -> str:
        return self.expectation.where

    @property
    def hint(self) -> str | None:
        if self.explain_date is None:
            return None
        return self.explain_command.format(rule=self.rule, date=self.explain_date.isoformat())

    @property
    def message(self) -> str:
        """One line: `file:line:col: rule: expected …, got … (nearest: D; explain: closebell explain …)`."""
        extra = []
        if self.nearest is not None:
            extra.append(f"nearest: {self.nearest.isoformat()}")
        if self.hint:
            extra.append(f"explain: {self.hint}")
        tail = f" ({'; '.join(extra)})" if extra else ""
        if self.skipped:
            return f"{self.where}: {self.rule}: skipped {self.expectation.expected}: {self.happened}"
        if self.ok:
            return f"{self.where}: {self.rule}: ok: {self.expectation.expected} ({self.happened})"
        return f"{self.where}: {self.rule}: expected {self.expectation.expected}, got {self.happened}{tail}"

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict:
        e = self.expectation
        return {"file": e.file, "line": e.line, "col": e.col, "rule": e.rule, "expectation": e.text,
                "ok": self.ok, "skipped": self.skipped, "happened": self.happened,
                "nearest": self.nearest.isoformat() if self.nearest else None,
                "explain": self.hint, "message": self.message}


def _days(idx, sessions) -> list[str]:
    return [sessions[i].date().isoformat() for i in idx]


def _listing(idx, sessions, limit=5) -> str:
    shown = ", ".join(_days(idx[:limit], sessions))
    more = f", … ({len(idx) - limit} more)" if len(idx) > limit else ""
    return f"{len(idx)} firing{'s' if len(idx) != 1 else ''}: {shown}{more}"


class _Checker:
    def __init__(self, evaluation, start, end, explain_command):
        self.ev = evaluation
        self.frame = evaluation.frame
        self.sessions = evaluation.frame.sessions
        self.lo, self.hi = window(self.frame, start, end)
        self.by_id = {r.id: r for r in evaluation.rules}
        self.cache: dict = {}
        self.explain_command = explain_command

    def outcome(self, e, ok, happened, nearest=None, explain_date=None, skipped=False):
        return Outcome(e, ok, happened, nearest, explain_date, skipped, self.explain_command)

    def nearest(self, fired: np.ndarray, lo: int, hi: int) -> date | None:
        if not len(fired):
            return None
        after = fired[fired >= lo]
        before = fired[fired <= hi]
        options = ([int(after[0])] if len(after) else []) + ([int(before[-1])] if len(before) else [])
        best = min(options, key=lambda i: (max(lo - i, i - hi, 0), i))
        return self.sessions[best].date()

    def check(self, e: Expectation) -> Outcome:
        if e.rule not in self.by_id:
            return self.outcome(e, False, f"no rule '{e.rule}' in the rules evaluated (disabled or removed?)")
        fired = np.flatnonzero(self.ev.fires[e.rule])
        return getattr(self, e.kind)(e, self.by_id[e.rule], fired)

    def _clip(self, e):
        a, b = window(self.frame, e.dates[0], e.dates[-1])
        return max(a, self.lo), min(b, self.hi)

    def fires_within(self, e, rule, fired):
        lo, hi = self._clip(e)
        if hi < lo:
            return self._empty_window(e)
        inside = fired[(fired >= lo) & (fired <= hi)]
        if len(inside):
            return self.outcome(e, True, _listing(inside, self.sessions))
        from bot.engine.explain import closest_session  # deliberately lazy: explain's module only on a failure
        closest = closest_session(self.ev, rule, lo, hi)
        return self.outcome(e, False, "none", self.nearest(fired, lo, hi), self.sessions[closest].date())

    def quiet_within(self, e, rule, fired):
        lo, hi = self._clip(e)
        if hi < lo:
            return self._empty_window(e)
        inside = fired[(fired >= lo) & (fired <= hi)]
        if not len(inside):
            return self.outcome(e, True, "none")
        return self.outcome(e, False, _listing(inside, self.sessions), None, self.sessions[inside[0]].date())

    def _empty_window(self, e):
        first, last = self.sessions[0].date(), self.sessions[-1].date()
        a, b = window(self.frame, e.dates[0], e.dates[-1])
        if b < a:  # the window itself holds no session of the data
            return self.outcome(e, False, f"no session of the data in that window (data: {first}..{last})")
        return self.outcome(e, True, "outside the window checked", skipped=True)

    def _positions(self, e):
        """(positions of the dates that are sessions in the window, problems with the others)."""
        found, problems = [], []
        first, last = self.sessions[0].date(), self.sessions[-1].date()
        for d in e.dates:
            if d < first or d > last:
                problems.append(f"no data on {d} (the data covers {first}..{last})")
                continue
            ts = pd.Timestamp(d)
            pos = int(self.sessions.searchsorted(ts))
            if self.sessions[pos] != ts:
                problems.append(f"no session on {d} (not a NYSE trading day)")
            elif self.lo <= pos <= self.hi:
                found.append(pos)
        return found, problems

    def fires(self, e, rule, fired):
        found, problems = self._positions(e)
        if problems:
            return self.outcome(e, False, "; ".join(problems))
        if not found:
            return self.outcome(e, True, "outside the window checked", skipped=True)
        missed = [i for i in found if not self.ev.fires[rule.id][i]]
        if not missed:
            return self.outcome(e, True, "fired on " + ", ".join(_days(found, self.sessions)))
        what = "none" if len(found) == 1 else "none on " + ", ".join(_days(missed, self.sessions))
        first = missed[0]
        return self.outcome(e, False, what, self.nearest(fired, first, first), self.sessions[first].date())

    def quiet(self, e, rule, fired):
        found, problems = self._positions(e)
        if problems:
            return self.outcome(e, False, "; ".join(problems))
        if not found:
            return self.outcome(e, True, "outside the window checked", skipped=True)
        loud = [i for i in found if self.ev.fires[rule.id][i]]
        if not loud:
            return self.outcome(e, True, "quiet on " + ", ".join(_days(found, self.sessions)))
        return self.outcome(e, False, "a firing on " + ", ".join(_days(loud, self.sessions)), None,
                            self.sessions[loud[0]].date())

    def _rate(self, e, rule, fired):
        lo, hi = self.lo, self.hi
        if e.start or e.end:
            a, b = window(self.frame, e.start, e.end)
            lo, hi = max(lo, a), min(hi, b)
        inside = fired[(fired >= lo) & (fired <= hi)]
        span = rate_span(first_evaluable(self.ev.context, rule, self.by_id, self.cache), inside, lo, hi)
        rate = per_year(len(inside), span)
        if span is None:
            return None, "never evaluable in that span (a series it reads has no data there)"
        years = (span[1] - span[0] + 1) / 252
        detail = (f"{rate:.2f} a year ({len(inside)} firing{'s' if len(inside) != 1 else ''} over "
                  f"{self.sessions[span[0]].date()}..{self.sessions[span[1]].date()}, {years:.1f} years)")
        return rate, detail

    def at_most_per_year(self, e, rule, fired):
        rate, detail = self._rate(e, rule, fired)
        return self.outcome(e, rate is not None and rate <= e.limit, detail)

    def at_least_per_year(self, e, rule, fired):
        rate, detail = self._rate(e, rule, fired)
        return self.outcome(e, rate is not None and rate >= e.limit, detail)


def check_expectations(evaluation, expectations: Sequence[Expectation], start=None, end=None,
                       explain_command: str = EXPLAIN_COMMAND) -> list[Outcome]:
    """Check each expectation against one evaluation; [start, end] limits the days checked.

    `explain_command` is the hint printed with a failure, formatted with {rule} and {date}
    (add `--rules PATH` to it when the rules file is not the default one).
    """
    checker = _Checker(evaluation, start, end, explain_command)
    return [checker.check(e) for e in expectations]


def summary(outcomes: Sequence[Outcome]) -> str:
    failed = sum(1 for o in outcomes if not o.ok)
    skipped = sum(1 for o in outcomes if o.skipped)
    passed = len(outcomes) - failed - skipped
    parts = [f"{passed} passed", f"{failed} failed"] + ([f"{skipped} skipped"] if skipped else [])
    return ", ".join(parts) + f" ({len(outcomes)} expectation{'s' if len(outcomes) != 1 else ''})"
