"""The outbox: every alert is stored before any attempt to send it, and sent exactly once.

Rows are keyed by (rule, session, channel): evaluating a session again (a
retry, a catch-up, a manual `check --send`) queues nothing new. A row is
claimed before its send and marked sent right after it, one alert at a time,
so a kill mid-batch re-sends at most the one alert that was on the wire. A
failed send is retried with exponential backoff, then marked failed, reported
by `status` and to the admin channel: never silently dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bot.notify import make_notifier
from bot.notify.alert import Alert
from bot.notify.routing import channels_for, destinations

log = logging.getLogger(__name__)

BACKOFF_CAP = timedelta(hours=2)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """base, 2 x base, 4 x base, ... capped at two hours."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def enqueue(store, alerts_with_routes, settings, render_chart=None, now=None) -> int:
    """Queue (alert, notify) pairs; returns rows newly queued.

    `render_chart(alert)` gives PNG bytes; it is called once per alert, and only
    when charts are on and a destination other than the console will show it.
    """
    now = now or now_utc()
    rows = []
    for alert, notify in alerts_with_routes:
        keys = destinations(channels_for(notify, alert.severity, settings))
        chart = None
        if render_chart and settings.notify.charts and any(k != "console" for k in keys):
            chart = render_chart(alert)
        for key in keys:
            rows.append({"rule_id": alert.rule_id, "session": alert.session, "channel": key,
                         "severity": alert.severity, "payload": alert.to_json(),
                         "chart": chart if key != "console" else None})
    added = store.outbox_add(rows, now)
    log.info("outbox: %d alert(s) for %d destination row(s), %d new", len(alerts_with_routes), len(rows), added)
    return added


@dataclass
class Report:
    sent: int = 0
    retrying: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.retrying:
            parts.append(f"{self.retrying} to retry")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def deliver(store, settings, now=None, notifiers=None) -> Report:
    """Send every due row, channel by channel; one failing channel never blocks another."""
    now = now or now_utc()
    report = Report()
    groups: dict[str, list] = {}
    for row in store.outbox_due(now):
        groups.setdefault(row.channel, []).append(row)
    for key, rows in groups.items():
        channel, _, recipient = key.partition(":")
        try:
            notifier = (notifiers or {}).get(channel) or make_notifier(channel, settings)
        except Exception as exc:  # a notifier that cannot even start is a failed attempt for its rows
            for row in rows:
                _after_attempt(store, settings, row, False, f"{channel}: {exc}", False, None, now, report)
            continue
        claimed = [row for row in rows if store.outbox_claim(row.id)]
        if not claimed:
            continue
        alerts = [Alert.from_json(row.payload) for row in claimed]
        charts = {i: row.chart for i, row in enumerate(claimed) if row.chart}

        def record(i, delivery, claimed=claimed):
            row = claimed[i]
            _after_attempt(store, settings, row, delivery.ok, delivery.error, delivery.permanent,
                           delivery.retry_after, now_utc(), report)

        try:
            notifier.send(recipient, alerts, charts, record)
        except Exception as exc:  # a notifier bug must not strand claimed rows
            log.exception("%s: notifier crashed", key)
            store.outbox_recover()
            report.errors.append(f"{key}: {type(exc).__name__}: {exc}")
    if report.sent or report.retrying or report.failed:
        log.info("delivery: %s", report.line())
    return report


def _after_attempt(store, settings, row, ok, error, permanent, retry_after, now, report):
    if ok:
        store.outbox_sent(row.id, now)
        report.sent += 1
        log.info("delivered %s %s to %s", row.session, row.rule_id, row.channel)
        return
    attempts = row.attempts + 1
    give_up = permanent or attempts >= settings.notify.max_attempts
    wait = backoff(attempts, settings.notify.retry_base_seconds)
    if retry_after:
        wait = max(wait, timedelta(seconds=retry_after))
    store.outbox_retry(row.id, error, now + wait, failed=give_up)
    message = f"{row.session} {row.rule_id} to {row.channel}: {error}"
    if give_up:
        report.failed.append(message)
        log.error("delivery failed for good after %d attempt(s): %s", attempts, message)
        if not row.rule_id.startswith("notice:"):
            admin_notice(store, settings, f"failed:{row.id}",
                         f"Closebell could not deliver {row.rule_id} ({row.session}) to {row.channel} after "
                         f"{attempts} attempt(s): {error}. `python -m bot outbox --retry` sends it again.",
                         exclude=row.channel)
    else:
        report.retrying += 1
        log.warning("delivery attempt %d failed, retry in %s: %s", attempts, wait, message)


def admin_notice(store, settings, key: str, text: str, session=None, exclude: str | None = None) -> int:
    """Queue a message about the bot itself (late data, failed delivery, bad rules) once per key."""
    channel = settings.notify.admin
    if channel is None:
        log.warning("admin notice (no admin channel configured): %s", text)
        return 0
    from bot.data.calendar import today_et
    alert = Alert(rule_id=f"notice:{key}"[:64], session=session or today_et(), severity="warning",
                  title="Closebell notice", text=text, kind="notice")
    keys = [k for k in destinations([channel]) if k != exclude]
    rows = [{"rule_id": alert.rule_id, "session": alert.session, "channel": k, "severity": alert.severity,
             "payload": alert.to_json(), "chart": None} for k in keys]
    return store.outbox_add(rows, now_utc())
