"""The typed message between the engine and the notifiers.

Notifiers see Alerts, never DataFrames or rules. An Alert is serialised into
the outbox before any attempt to send it, so a crash between evaluation and
delivery loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

__all__ = ["SEVERITY_ICON", "SEVERITY_ORDER", "Alert", "clean_values"]

# One icon per severity, lowest first: the engine's SEVERITIES in its order (tests/test_layering.py holds the
# two equal), so the notifiers rank alerts without importing the engine: they see alerts, never the engine.
SEVERITY_ICON = {"info": "ℹ️", "warning": "⚠️", "critical": "🔴"}
SEVERITY_ORDER = {name: rank for rank, name in enumerate(SEVERITY_ICON)}


@dataclass(frozen=True)
class Alert:
    rule_id: str
    session: date
    severity: str
    title: str
    text: str
    values: dict = field(default_factory=dict)
    late: bool = False  # delivered after its evening (catch-up after an outage)
    kind: str = "alert"  # alert | notice (the bot's own messages to the admin)

    def to_json(self) -> str:
        body = asdict(self)
        body["session"] = self.session.isoformat()
        return json.dumps(body, sort_keys=True, allow_nan=False, default=_nan_safe)

    @classmethod
    def from_json(cls, text: str) -> "Alert":
        body = json.loads(text)
        body["session"] = date.fromisoformat(body["session"])
        return cls(**body)

    @property
    def rank(self) -> int:
        """How loud the alert is, lowest 0: what grouping and subjects sort by (unknown severities lowest)."""
        return SEVERITY_ORDER.get(self.severity, 0)

    @property
    def heading(self) -> str:
        late = " (late)" if self.late else ""
        return f"{self.session:%Y-%m-%d} {self.rule_id} [{self.severity}]{late}"

    def plain(self) -> str:
        """The alert as plain text lines: heading, title, text, values."""
        lines = [self.heading, self.title, self.text]
        if self.values:
            lines.append("; ".join(f"{k} = {_fmt(v)}" for k, v in self.values.items()))
        return "\n".join(line for line in lines if line)


def _fmt(value):
    return "n/a" if value is None else f"{value:.4g}"


def _nan_safe(value):
    return None



def clean_values(values: dict) -> dict:
    """Values as JSON-safe floats (NaN becomes None)."""
    return {k: (None if v is None or v != v else round(float(v), 6)) for k, v in values.items()}
