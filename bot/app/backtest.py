"""`backtest`: every firing in a window and what followed, from one evaluation over all history.

The report is computed as arrays (bot.engine.report): firings, rates, forward
returns against the unconditional baseline, hit rates. Messages are rendered
only for the firings a renderer prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from bot.engine.report import summarize
from bot.engine.returns import rounded, rounded_json
from bot.errors import UsageError

CHUNK = 64  # rules whose forward returns `rule_texts` formats as one array


@dataclass
class BacktestResult:
    window_from: str  # the window actually covered: no earlier than the first session a rule can be evaluated
    window_to: str
    reports: list  # bot.engine.report.RuleReport per rule
    prepared: object = field(default=None, repr=False)  # the evaluation behind it (for --plot), not in JSON
    revised: list = field(default_factory=list)  # "CPIAUCSL: revised values before ...": bot.app.vintages
    overrides: dict = field(default_factory=dict)  # rule id -> "runs with an override: ..." (bot.app.tune)

    def rule_json(self, report) -> dict:
        """One rule's JSON: the report, plus every firing's forward returns as arrays aligned with `fires`."""
        body = _head(report)
        returns = report.forward_returns()
        horizons = list(returns)
        columns = rounded(np.stack([returns[h] for h in horizons]), 4) if horizons else []
        body["forward_returns"] = {str(h): column for h, column in zip(horizons, columns)}
        body["average_forward_returns"] = _averages(report)
        return body

    def rule_texts(self, chunk: int = CHUNK):
        """(report, its JSON text) per rule: `json.dumps(self.rule_json(report), separators=(",", ":"))`
        character for character, made faster. The forward returns of `chunk` rules at a time are formatted
        as one array (bot.engine.returns.rounded_json), so no float goes through repr one by one, and only
        one chunk's text is in memory at once."""
        compact = {"separators": (",", ":")}
        for begin in range(0, len(self.reports), chunk):
            reports = self.reports[begin:begin + chunk]
            columns, ends, size = [], [], 0
            for report in reports:
                for column in report.forward_returns().values():
                    columns.append(column)
                    size += len(column)
                    ends.append(size)
            texts = iter(rounded_json(np.concatenate(columns) if columns else np.empty(0), ends, 4))
            for report in reports:
                forward = ",".join(f"{json.dumps(str(h))}:{next(texts)}" for h in report.forward)
                yield report, (json.dumps(_head(report), **compact)[:-1]  # the same keys, in the same order
                               + ',"forward_returns":{' + forward + '},"average_forward_returns":'
                               + json.dumps(_averages(report), **compact) + "}")

    def to_json(self) -> dict:
        out = {"from": self.window_from, "to": self.window_to,
               "rules": {r.rule: self.rule_json(r) for r in self.reports}}
        if self.revised:
            out["revised"] = self.revised
        return out


def _head(report) -> dict:
    """A rule's JSON before its forward returns: the report, with `count` and `fires`."""
    body = report.to_json()
    body["count"] = body["firings"]
    body["fires"] = body.pop("dates")
    return body


def _averages(report) -> dict:
    return {str(h): s.mean for h, s in report.forward.items()}


def backtest(prepared, start=None, end=None) -> BacktestResult:
    sessions = prepared.frame.sessions
    _require_sessions(sessions, start, end)
    reports = summarize(prepared.evaluation, start, end)
    evaluable = [r.evaluable_from for r in reports if r.evaluable_from is not None]
    first = max(sessions[0].date(), min(evaluable)) if evaluable else sessions[0].date()
    window_from = f"{max(first, start) if start else first}"
    window_to = f"{min(sessions[-1].date(), end) if end else sessions[-1].date()}"
    if window_from > window_to:  # ISO dates order as text
        raise UsageError(f"--to {end} is before any rule can be evaluated (the first from {first}); "
                         f"choose --to {first} or later")
    return BacktestResult(window_from, window_to, reports, prepared)


def _require_sessions(sessions, start, end) -> None:
    """A window with no session in it is a usage error: a report over nothing ("rate n/a over None ..
    None", exit 0) reads like a rule that never fires, when the dates were what was wrong."""
    first, last = sessions[0].date(), sessions[-1].date()
    inside = sessions[(sessions >= str(start or first)) & (sessions <= str(end or last))]
    if len(inside):
        return
    asked = " ".join(filter(None, [start and f"--from {start}", end and f"--to {end}"]))
    raise UsageError(f"{asked} holds no session with data; the data runs from {first} to {last} "
                     f"(the last session with data), so choose dates inside it")
