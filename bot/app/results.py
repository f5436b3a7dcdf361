"""What the application core answers: typed results, never printed text.

Each adapter renders these its own way (the CLI as text or JSON, Telegram as
HTML). `to_json()` gives the plain structure that `--json` prints, so the JSON
contract lives next to the data it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class RuleState:
    """One rule on one session, as `check` reports it."""

    id: str
    title: str
    severity: str
    fires: bool
    holds: bool | None  # None: unknown (an input was missing)
    values: dict
    message: str
    gaps: list[str]
    not_sent: str | None = None  # the condition holds but nothing is sent: cooldown, `for:`, still active

    def to_json(self) -> dict:
        return {"title": self.title, "severity": self.severity, "fires": self.fires, "holds": self.holds,
                "not_sent": self.not_sent, "values": self.values, "message": self.message, "gaps": self.gaps}


@dataclass
class CheckResult:
    session: date
    note: str | None  # e.g. the date asked for was not a session
    rules: list[RuleState]
    delivery: object = None  # the outbox Report when the check was sent
    stale: list = field(default_factory=list)  # freshness rows for series behind their expected lag

    @property
    def fired(self) -> list[RuleState]:
        return [r for r in self.rules if r.fires]

    def to_json(self) -> dict:
        return {"session": f"{self.session:%Y-%m-%d}", "note": self.note,
                "rules": {r.id: r.to_json() for r in self.rules}}


@dataclass
class SessionOutcome:
    """What the job for one session did: the daemon's, catch-up's and replay's record."""

    session: date
    status: str  # "done", "waiting" (data not in yet, deadline not reached) or "failed"
    missing: dict = field(default_factory=dict)  # series -> why it is not there for the session
    skipped: list = field(default_factory=list)  # rules not evaluated for want of data
    queued: int = 0
    delivery: object = None
    reason: str = ""  # why a failed session failed
    late: bool = False

    def line(self) -> str:
        if self.status == "waiting":
            return f"{self.session}: waiting for {', '.join(self.missing)}"
        if self.status == "failed":
            return f"{self.session}: failed: {self.reason}"
        parts = [f"{self.session}: done", f"{self.queued} alert row(s) queued"]
        if self.delivery is not None:
            parts.append(self.delivery.line())
        if self.skipped:
            parts.append(f"skipped for stale data: {', '.join(self.skipped)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class RunRecord:
    session: date
    status: str
    late: bool
    finished_at: datetime | None
    detail: str


@dataclass(frozen=True)
class SeriesState:
    name: str
    latest: date | None
    fetch_source: str | None = None
    fetch_ok: bool | None = None
    fetch_message: str = ""
    stale: str = ""  # why the series is stale, "" when fresh


@dataclass
class Status:
    now: datetime
    store: str  # where the store is (path or host; never a password)
    last_run: RunRecord | None
    next_session: date
    next_run_at: datetime
    series: list[SeriesState]
    outbox: dict[str, int]
    failed: list  # the latest failed outbox rows
    mutes: dict[str, datetime]
    channels: list = field(default_factory=list)  # ChannelStatus rows when the notifiers can say
    overrides: dict = field(default_factory=dict)  # rule id -> "runs with an override: ..." (bot.app.tune)
    instances: list | None = None  # PostgreSQL: the leader and standbys (bot.store.lock.Instance); None: SQLite
    claimed: list = field(default_factory=list)  # DeliveryRow of each row being sent (status "sending")


@dataclass(frozen=True)
class RuleOverview:
    id: str
    title: str
    severity: str
    last_fired: date | None
    muted_until: datetime | None
    tuned: str | None = None  # "runs with an override: lead 6 (file: 5)" (bot.app.tune)


@dataclass(frozen=True)
class Chart:
    caption: str
    png: bytes


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    rule: str
    session: date
    channel: str
    status: str
    attempts: int
    error: str
    next_attempt: datetime | None
    title: str
    owner: str = ""  # a "sending" row's claimer: "HOST pid PID" ("" if not claimed or not recorded)
    lease_until: datetime | None = None  # when its claim runs out at the latest
    owner_gone: bool = False  # its claimer is known dead, or its lease ran out: the next delivery sends it

    def to_json(self) -> dict:
        return {"id": self.id, "rule": self.rule, "session": f"{self.session}", "channel": self.channel,
                "status": self.status, "attempts": self.attempts, "error": self.error,
                "next_attempt": f"{self.next_attempt}", "owner": self.owner,
                "lease_until": f"{self.lease_until}" if self.lease_until else None, "owner_gone": self.owner_gone}


@dataclass(frozen=True)
class RetryResult:
    requeued: int  # failed rows put back to pending
    report: object  # the outbox Report of the delivery that followed


@dataclass(frozen=True)
class ChannelTest:
    destination: str  # "telegram:123", "email", "console"
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class TestRulesResult:
    path: object  # the tests file
    outcomes: list  # bot.engine.expectations.Outcome per expectation

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if not o.ok and not o.skipped]

    @property
    def summary(self) -> str:
        from bot.engine.expectations import summary  # deliberately lazy: test-rules only, not every verb's start-up
        return summary(self.outcomes)

    def to_json(self) -> dict:
        return {"tests": str(self.path), "passed": len(self.outcomes) - len(self.failed), "failed": len(self.failed),
                "outcomes": [o.to_json() for o in self.outcomes]}


@dataclass(frozen=True)
class RulesTests:
    path: object
    expectations: list


class SweepRows(list):
    """`sweep`'s rows (bot.engine.sweep.SweepRow), with the "revised values" notes (bot.app.vintages)."""

    revised: list[str] = []
    holdout: object = None  # with --holdout: bot.engine.sweep.HoldoutCheck, the in-sample choice tested after it
