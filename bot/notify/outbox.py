"""The outbox: every alert is stored before any attempt to send it, and sent exactly once.

Rows are keyed by (rule, session, channel): evaluating a session again (a
retry, a catch-up, a manual `check --send`) queues nothing new.

Sending is claimed, one unit at a time, just before the send: the rows of a
unit (one alert for Telegram; the whole batch for email, which sends one
summary) are taken by this process in one statement, with an owner id and a
lease, and released as sent / to retry / failed right after. A process that
finds a row claimed leaves it alone, so `outbox --retry` beside a live daemon
never resends what the daemon is sending. A kill mid-batch strands at most the
one unit that was on the wire, until its lease runs out; every sender first
returns expired claims to pending (`recover`), so that unit is then sent again
(at least once: the Bot API has no idempotency key).

A failed send is retried with exponential backoff, then marked failed,
reported by `status` and to the admin channel: never silently dropped. Time is
read only from the clock passed in.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import ET, SYSTEM, Clock
from bot.notify.registry import make_notifier
from bot.notify import quiet
from bot.notify.alert import SEVERITY_ORDER, Alert
from bot.notify.base import Delivery, grouped_units
from bot.notify.routing import admin_channel, channels_for, destinations

log = logging.getLogger(__name__)

BACKOFF_CAP = timedelta(hours=2)
LEASE = timedelta(minutes=10)  # longer than any one send (Telegram waits up to 30 s on a flood limit)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """base, 2 x base, 4 x base, ... capped at two hours."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def new_owner() -> str:
    """Who holds a claim: host and pid say which process, the random part which deliver() call."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def enqueue(store, alerts_with_routes, settings, render_chart=None, *, now: datetime) -> int:
    """Queue (alert, notify) pairs at `now` (the caller's clock); returns rows newly queued.

    `render_chart(alert)` gives PNG bytes (or None). Only charts that will be
    sent are drawn (a chart costs ~0.1 s, 300 of them half a minute): charts
    on, a destination other than the console, and the alert either goes out
    alone or leads its grouped message (`chart_carriers`). Each alert is drawn
    at most once, whatever the number of destinations.
    """
    routed = [(alert, destinations(channels_for(notify, alert.severity, settings)))
              for alert, notify in alerts_with_routes]
    carriers: dict[str, set[int]] = {}  # destination -> the alerts whose chart it sends
    drawn: dict[int, bytes | None] = {}
    if render_chart and settings.notify.charts:
        by_key: dict[str, list[int]] = {}
        for n, (_alert, keys) in enumerate(routed):
            for key in keys:
                if key != "console":
                    by_key.setdefault(key, []).append(n)
        for key, indices in by_key.items():
            for candidates in chart_carriers(key, indices, [routed[n][0] for n in indices], settings, now):
                for n in candidates:  # the lead; should its chart fail, the next in line carries one
                    if n not in drawn:
                        drawn[n] = render_chart(routed[n][0])
                    if drawn[n]:
                        carriers.setdefault(key, set()).add(n)
                        break
    rows = []
    for n, (alert, keys) in enumerate(routed):
        for key in keys:
            rows.append({"rule_id": alert.rule_id, "session": alert.session, "channel": key,
                         "severity": alert.severity, "payload": alert.to_json(),
                         "chart": drawn[n] if n in carriers.get(key, ()) else None})
    added = store.outbox_add(rows, now)
    log.info("outbox: %d alert(s) for %d destination row(s), %d new, %d chart(s) drawn",
             len(alerts_with_routes), len(rows), added, sum(1 for c in drawn.values() if c))
    return added


def chart_carriers(key: str, indices: list[int], alerts: list, settings, now: datetime) -> list[list[int]]:
    """The alerts of one destination whose chart is sent, as candidate lists: [n] for an alert that goes out
    alone; for a grouped message, its members most severe first (the lead carries the message's one chart,
    the next stands in if the lead's chart cannot be drawn).

    The split is the delivery's own: alerts held by quiet hours go in a later delivery than those sent now
    (bot.notify.quiet.hold_until), and each delivery is cut into messages by `grouped_units`, the rule the
    Telegram and apprise notifiers use (an email, one summary of the batch, follows the same rule, so a batch
    of 300 is not a 15 MB mail). Within a message the order is the outbox's (queue order) ranked by severity,
    as the notifiers rank it.
    """
    deliveries: dict = {}
    for n, alert in zip(indices, alerts):
        deliveries.setdefault(quiet.hold_until(alert, now, settings, channel=key), []).append(n)
    by_index = dict(zip(indices, alerts))
    out = []
    for members in deliveries.values():
        for unit in grouped_units([by_index[n] for n in members], settings):
            out.append(sorted((members[i] for i in unit), key=lambda n: -SEVERITY_ORDER.get(by_index[n].severity, 0)))
    return out


@dataclass
class Report:
    sent: int = 0
    retrying: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    held: int = 0  # rows moved later by hold_until (quiet hours), no attempt counted

    def line(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.retrying:
            parts.append(f"{self.retrying} to retry")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.held:
            parts.append(f"{self.held} held")
        return ", ".join(parts)


def units_of(notifier, channel: str, alerts: list) -> list[list[int]]:
    """How a notifier's alerts are claimed and sent: index lists, each one unit.

    A notifier says so with `units(alerts)`; without it each alert is its own
    unit, except email, whose one summary message carries the whole batch.
    Any index a notifier leaves out is sent as a unit of its own.
    """
    units = getattr(notifier, "units", None)
    if units is not None:
        chosen = [list(u) for u in units(alerts) if u]
    elif channel == "email":
        chosen = [list(range(len(alerts)))] if alerts else []
    else:
        chosen = [[i] for i in range(len(alerts))]
    covered = {i for unit in chosen for i in unit}
    return chosen + [[i] for i in range(len(alerts)) if i not in covered]


def deliver(store, settings, clock: Clock = SYSTEM, notifiers=None, hold_until=None, lease: timedelta = LEASE,
            ignore_backoff: bool = False, sleep=time.sleep) -> Report:
    """Send every due row, channel by channel, one claimed unit at a time; one failing channel never blocks another.

    `hold_until(alert, now, settings) -> datetime | None` (quiet hours): a row it
    returns a time for is moved to that time, no attempt counted.
    `ignore_backoff` sends pending rows now whatever their next attempt says
    (`outbox --retry`); rows claimed by another process stay untouched either way.
    `sleep(seconds)` paces units to one recipient by the notifier's `pace` (Telegram's flood limit).
    Every time (due, lease, records) is read from `clock`.
    """
    report = Report()
    owner = new_owner()
    recovered = store.outbox_recover(clock.now())
    if recovered:
        log.warning("%d delivery(ies) were claimed by a process whose lease ran out: sending again", recovered)
    groups: dict[str, list] = {}
    for row in store.outbox_due(clock.now(), ignore_backoff=ignore_backoff):
        groups.setdefault(row.channel, []).append(row)
    for key, rows in groups.items():
        _deliver_destination(store, settings, clock, notifiers, hold_until, lease, ignore_backoff, sleep, owner,
                             key, rows, report)
    if report.sent or report.retrying or report.failed or report.held:
        log.info("delivery: %s", report.line())
    return report


def _deliver_destination(store, settings, clock, notifiers, hold_until, lease, ignore_backoff, sleep, owner,
                         key, rows, report):
    channel, _, recipient = key.partition(":")
    try:
        notifier = (notifiers or {}).get(channel) or make_notifier(channel, settings, clock=clock)
    except Exception as exc:  # a notifier that cannot even start is a failed attempt for its rows
        for row in rows:
            _attempt(store, settings, clock, lease, ignore_backoff, owner, [row],
                     lambda claimed, record, exc=exc: record(0, Delivery(False, f"{channel}: {exc}")), report)
        return
    alerts = [Alert.from_json(row.payload) for row in rows]
    if hold_until is not None:
        kept = []
        for row, alert in zip(rows, alerts):
            until = hold_until(alert, clock.now(), settings, channel=channel)
            if until is not None:
                report.held += store.outbox_hold([row.id], until)
                log.info("holding %s %s to %s until %s", row.session, row.rule_id, key, until)
            else:
                kept.append((row, alert))
        rows, alerts = [r for r, _ in kept], [a for _, a in kept]
    pace = getattr(notifier, "pace", 0) or 0
    sent_before = False
    for unit in units_of(notifier, channel, alerts):
        if sent_before and pace:
            sleep(pace)  # before the claim, so a kill in the pause leaves nothing claimed

        def send(claimed, record):
            charts = {i: row.chart for i, row in enumerate(claimed) if row.chart}
            notifier.send(recipient, [Alert.from_json(row.payload) for row in claimed], charts, record)
        sent_before |= _attempt(store, settings, clock, lease, ignore_backoff, owner, [rows[i] for i in unit],
                                send, report)


def _attempt(store, settings, clock, lease, ignore_backoff, owner, unit_rows, send, report) -> bool:
    """Claim one unit, send it, record each row's outcome. False if the unit was not ours to send."""
    now = clock.now()
    claimed = store.outbox_claim([row.id for row in unit_rows], owner, now + lease,
                                 due_by=None if ignore_backoff else now)
    if not claimed:
        log.info("%s: %d row(s) claimed by another process or no longer due; left alone",
                 unit_rows[0].channel, len(unit_rows))
        return False
    done: set[int] = set()

    def record(i, delivery: Delivery):
        done.add(i)
        _after_attempt(store, settings, claimed[i], delivery, clock.now(), owner, report)

    try:
        send(claimed, record)
        missing = Delivery(False, "the notifier reported no result")
    except Exception as exc:  # a notifier bug must not strand claimed rows: a failed attempt, retried
        log.exception("%s: notifier crashed", claimed[0].channel)
        report.errors.append(f"{claimed[0].channel}: {type(exc).__name__}: {exc}")
        missing = Delivery(False, f"notifier crashed: {type(exc).__name__}: {exc}")
    for i in range(len(claimed)):
        if i not in done:
            record(i, missing)
    return True


def _after_attempt(store, settings, row, delivery: Delivery, now: datetime, owner: str, report):
    if delivery.ok:
        store.outbox_sent(row.id, now)
        report.sent += 1
        log.info("delivered %s %s to %s", row.session, row.rule_id, row.channel)
        return
    error = delivery.error
    attempts = row.attempts + 1
    give_up = delivery.permanent or attempts >= settings.notify.max_attempts
    wait = backoff(attempts, settings.notify.retry_base_seconds)
    if delivery.retry_after:
        wait = max(wait, timedelta(seconds=delivery.retry_after))
    if not store.outbox_retry(row.id, owner, error, now + wait, failed=give_up):
        log.warning("%s %s to %s: our claim expired and was taken over; its outcome is theirs to record",
                    row.session, row.rule_id, row.channel)
        return
    message = f"{row.session} {row.rule_id} to {row.channel}: {error}"
    if give_up:
        report.failed.append(message)
        log.error("delivery failed for good after %d attempt(s): %s", attempts, message)
        if not row.rule_id.startswith("notice:"):
            admin_notice(store, settings, f"failed:{row.id}",
                         f"Closebell could not deliver {row.rule_id} ({row.session}) to {row.channel} after "
                         f"{attempts} attempt(s): {error}. `python -m bot outbox --retry` sends it again.",
                         exclude=row.channel, now=now)
    else:
        report.retrying += 1
        log.warning("delivery attempt %d failed, retry in %s: %s", attempts, wait, message)


def admin_notice(store, settings, key: str, text: str, session=None, exclude: str | None = None, *,
                 now: datetime) -> int:
    """Queue a message about the bot itself (late data, failed delivery, bad rules) once per key, at `now`.

    `session` defaults to today in New York as of `now`.
    """
    channel = admin_channel(settings)
    if channel is None:
        log.warning("admin notice (no admin channel configured): %s", text)
        return 0
    alert = Alert(rule_id=f"notice:{key}"[:64], session=session or now.astimezone(ET).date(), severity="warning",
                  title="Closebell notice", text=text, kind="notice")
    keys = [k for k in destinations([channel]) if k != exclude]
    rows = [{"rule_id": alert.rule_id, "session": alert.session, "channel": k, "severity": alert.severity,
             "payload": alert.to_json(), "chart": None} for k in keys]
    return store.outbox_add(rows, now)
