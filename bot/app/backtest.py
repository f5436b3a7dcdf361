"""`backtest`: every firing in a window and what followed, from one evaluation over all history.

The report is computed as arrays (bot.engine.report): firings, rates, forward
returns against the unconditional baseline, hit rates. Messages are rendered
only for the firings a renderer prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.engine.report import summarize


@dataclass
class BacktestResult:
    window_from: str  # the window actually covered: no earlier than the first session a rule can be evaluated
    window_to: str
    reports: list  # bot.engine.report.RuleReport per rule
    prepared: object = field(default=None, repr=False)  # the evaluation behind it (for --plot), not in JSON

    def rule_json(self, report) -> dict:
        """One rule's JSON: the report, plus every firing's forward returns as arrays aligned with `fires`."""
        body = report.to_json()
        returns = report.forward_returns()
        body["count"] = body["firings"]
        body["fires"] = body.pop("dates")
        body["forward_returns"] = {str(h): [None if v != v else round(float(v), 4) for v in arr]
                                   for h, arr in returns.items()}
        body["average_forward_returns"] = {str(h): s.mean for h, s in report.forward.items()}
        return body

    def to_json(self) -> dict:
        return {"from": self.window_from, "to": self.window_to,
                "rules": {r.rule: self.rule_json(r) for r in self.reports}}


def backtest(prepared, start=None, end=None) -> BacktestResult:
    sessions = prepared.frame.sessions
    reports = summarize(prepared.evaluation, start, end)
    evaluable = [r.evaluable_from for r in reports if r.evaluable_from is not None]
    first = max(sessions[0].date(), min(evaluable)) if evaluable else sessions[0].date()
    window_from = f"{max(first, start) if start else first}"
    window_to = f"{min(sessions[-1].date(), end) if end else sessions[-1].date()}"
    return BacktestResult(window_from, window_to, reports, prepared)
