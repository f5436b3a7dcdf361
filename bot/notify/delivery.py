"""Delivery through the outbox: every alert is stored before any attempt to send it, and sent exactly once.

This module queues rows (`enqueue`, `admin_notice`) and runs the delivery loop
(`deliver`); the outbox table itself (rows, claims, leases, holders) is
bot.store.outbox.

Rows are keyed by (rule, session, channel): evaluating a session again (a
retry, a catch-up, a manual `check --send`) queues nothing new.

Sending is claimed, one unit at a time, just before the send: the rows of a
unit (one alert for Telegram; the whole batch for email, which sends one
summary) are taken by this process in one statement, with an owner id and a
lease, and released as sent / to retry / failed right after. A process that
finds a row claimed leaves it alone, so `outbox --retry` beside a live daemon
never resends what the daemon is sending. A kill mid-batch strands at most the
one unit that was on the wire; every sender first returns to pending the claims
whose process is gone (same host) or whose lease ran out (`recover`), so that
unit is sent again by the next delivery (at least once: the Bot API has no
idempotency key).

A send the notifier reports done is recorded whatever the store does next:
recording is retried with backoff while the store reconnects, and if it
stays gone the outcome is kept in a local journal (bot.store.journal) that
the next delivery records first, so it is never sent again. A store failure
ends the delivery with a report that says so (`check --send` exits 4); it is
never a traceback. The daemon's senders carry its lock's fence
(bot.store.lock.Fence) and check it before the batch and before each claim:
an instance that lost the leader's lock claims and sends nothing more.

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
from bot.errors import StoreError
from bot.notify.registry import make_notifier
from bot.notify import quiet
from bot.notify.alert import Alert
from bot.notify.base import Delivery, grouped_units
from bot.notify.routing import admin_channel, channels_for, destinations
from bot.store.journal import SendJournal

log = logging.getLogger(__name__)

BACKOFF_CAP = timedelta(hours=2)
LEASE = timedelta(minutes=10)  # longer than any one send (Telegram waits up to 30 s on a flood limit)
# Between attempts to record a send the store refused (a terminated connection is replaced at once; a
# restarting server takes seconds): then the outcome goes to the local journal (bot.store.journal).
RECORD_RETRY = (0.1, 0.3, 1.0, 3.0)


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
    added = store.outbox.add(rows, now)
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
            out.append(sorted((members[i] for i in unit), key=lambda n: -by_index[n].rank))
    return out


@dataclass
class Report:
    sent: int = 0
    retrying: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    held: int = 0  # rows moved later by hold_until (quiet hours), no attempt counted
    unrecorded: int = 0  # sent, but the store could not record it: kept in `journal` until it can
    journal: str = ""
    store_error: str = ""  # the store failed: delivery stopped (what was not claimed is sent next time)
    fenced: bool = False  # this instance no longer holds the leader's lock: it stopped sending

    def line(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.unrecorded:
            parts.append(f"{self.unrecorded} sent but not recorded: kept in {self.journal}, will be recorded on "
                         "the next start")
        if self.retrying:
            parts.append(f"{self.retrying} to retry")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.held:
            parts.append(f"{self.held} held")
        if self.fenced:
            parts.append("stopped: another instance leads now")
        if self.store_error:
            parts.append(f"stopped: {self.store_error}")
        return ", ".join(parts)

    @property
    def store_failed(self) -> bool:
        """The store failed during the delivery (a caller exits 4 for it)."""
        return bool(self.unrecorded or self.store_error)


def units_of(notifier, alerts: list) -> list[list[int]]:
    """How a notifier's alerts are claimed and sent: index lists, each one unit.

    A notifier says so with `units(alerts)` (email: the whole batch, one
    summary message); without it each alert is its own unit.
    Any index a notifier leaves out is sent as a unit of its own.
    """
    units = getattr(notifier, "units", None)
    if units is not None:
        chosen = [list(u) for u in units(alerts) if u]
    else:
        chosen = [[i] for i in range(len(alerts))]
    covered = {i for unit in chosen for i in unit}
    return chosen + [[i] for i in range(len(alerts)) if i not in covered]


@dataclass
class _Run:
    """One deliver() call: what every step of it reads, and whether it must stop."""

    store: object
    settings: object
    clock: Clock
    notifiers: dict | None
    hold_until: object
    lease: timedelta
    ignore_backoff: bool
    sleep: object
    owner: str
    report: Report
    fence: object
    journal: SendJournal
    record_retry: tuple

    def leading(self) -> bool:
        """Still the leader (no fence: not a leader's sender, e.g. `check --send`). Said once when not."""
        if self.fence is None or self.report.fenced:
            return not self.report.fenced
        if not self.fence.held(self.store):
            self.report.fenced = True
            log.warning("this instance no longer holds the leader's lock: stopped sending (the new leader sends "
                        "the rest)")
        return not self.report.fenced


def deliver(store, settings, clock: Clock = SYSTEM, notifiers=None, hold_until=None, lease: timedelta = LEASE,
            ignore_backoff: bool = False, sleep=time.sleep, fence=None, record_retry=RECORD_RETRY) -> Report:
    """Send every due row, channel by channel, one claimed unit at a time; one failing channel never blocks another.

    `hold_until(alert, now, settings) -> datetime | None` (quiet hours): a row it
    returns a time for is moved to that time, no attempt counted.
    `ignore_backoff` sends pending rows now whatever their next attempt says
    (`outbox --retry`); rows claimed by another process stay untouched either way.
    `sleep(seconds)` paces units to one recipient by the notifier's `pace` (Telegram's flood limit).
    `fence` (bot.store.lock.Fence, the daemon's): checked before the batch and before each claim; once
    the lock is another's, nothing more is claimed or sent. `record_retry`: the waits between attempts
    to record a send the store refused; after the last one the outcome goes to the local journal.
    Sends kept in that journal by an earlier process are recorded first, before anything is recovered
    or sent. A store failure stops the delivery and is said in the report, never raised.
    Every time (due, lease, records) is read from `clock`.
    """
    report = Report()
    try:
        run = _Run(store, settings, clock, notifiers, hold_until, lease, ignore_backoff, sleep, new_owner(), report,
                   fence, SendJournal.of(store), tuple(record_retry))
        replayed = run.journal.replay(store)
        if replayed:
            log.warning("recorded %d send(s) kept in %s while the store was gone: never sent again", replayed,
                        run.journal.path)
        if not run.leading():
            return report
        recovered = store.outbox.recover(clock.now())
        if recovered:
            log.warning("%d delivery(ies) were claimed by a process that died or whose lease ran out: sending again",
                        recovered)
        groups: dict[str, list] = {}
        for row in store.outbox.due(clock.now(), ignore_backoff=ignore_backoff):
            groups.setdefault(row.channel, []).append(row)
        for key, rows in groups.items():
            if report.fenced:
                break
            _deliver_destination(run, key, rows)
    except StoreError as exc:
        report.store_error = str(exc)
        log.error("delivery stopped, the store failed: %s (what was not sent is sent by the next delivery)", exc)
    if report.sent or report.retrying or report.failed or report.held or report.store_failed or report.fenced:
        log.info("delivery: %s", report.line())
    return report


def _deliver_destination(run: _Run, key, rows):
    store, settings, clock, report = run.store, run.settings, run.clock, run.report
    channel, _, recipient = key.partition(":")
    try:
        notifier = (run.notifiers or {}).get(channel) or make_notifier(channel, settings, clock=clock)
    except Exception as exc:  # a notifier that cannot even start is a failed attempt for its rows
        for row in rows:
            _attempt(run, [row], lambda claimed, record, exc=exc: record(0, Delivery(False, f"{channel}: {exc}")))
        return
    alerts = [Alert.from_json(row.payload) for row in rows]
    if run.hold_until is not None:
        kept = []
        for row, alert in zip(rows, alerts):
            until = run.hold_until(alert, clock.now(), settings, channel=channel)
            if until is not None:
                report.held += store.outbox.hold([row.id], until)
                log.info("holding %s %s to %s until %s", row.session, row.rule_id, key, until)
            else:
                kept.append((row, alert))
        rows, alerts = [r for r, _ in kept], [a for _, a in kept]
    pace = getattr(notifier, "pace", 0) or 0
    sent_before = False
    for unit in units_of(notifier, alerts):
        if sent_before and pace:
            run.sleep(pace)  # before the claim, so a kill in the pause leaves nothing claimed

        def send(claimed, record):
            charts = {i: row.chart for i, row in enumerate(claimed) if row.chart}
            notifier.send(recipient, [Alert.from_json(row.payload) for row in claimed], charts, record)
        attempted = _attempt(run, [rows[i] for i in unit], send)
        if attempted is None:  # no longer the leader
            return
        sent_before |= attempted


def _attempt(run: _Run, unit_rows, send) -> bool | None:
    """Claim one unit, send it, record each row's outcome. False if the unit was not ours to send, None if
    this instance lost the leader's lock (nothing claimed)."""
    if not run.leading():
        return None
    now = run.clock.now()
    claimed = run.store.outbox.claim([row.id for row in unit_rows], run.owner, now + run.lease,
                                     due_by=None if run.ignore_backoff else now)
    if not claimed:
        log.info("%s: %d row(s) claimed by another process or no longer due; left alone",
                 unit_rows[0].channel, len(unit_rows))
        return False
    done: set[int] = set()

    def record(i, delivery: Delivery):
        done.add(i)
        _after_attempt(run, claimed[i], delivery, run.clock.now())

    try:
        send(claimed, record)
        missing = Delivery(False, "the notifier reported no result")
    except Exception as exc:  # a notifier bug must not strand claimed rows: a failed attempt, retried
        log.exception("%s: notifier crashed", claimed[0].channel)
        run.report.errors.append(f"{claimed[0].channel}: {type(exc).__name__}: {exc}")
        missing = Delivery(False, f"notifier crashed: {type(exc).__name__}: {exc}")
    for i in range(len(claimed)):
        if i not in done:
            record(i, missing)
    return True


def _record_sent(run: _Run, row, now: datetime) -> None:
    """The message is out: record it, retrying while the store reconnects; if it stays gone, keep the outcome
    in the journal (durable before this returns), so no later delivery sends it again."""
    for wait in (*run.record_retry, None):
        try:
            run.store.outbox.sent(row.id, now)
            run.report.sent += 1
            return
        except StoreError as exc:
            if wait is None:
                error = exc
                break
            log.warning("%s %s to %s was sent, recording it failed (%s); again in %.1f s", row.session,
                        row.rule_id, row.channel, exc, wait)
            run.sleep(wait)
    try:
        run.journal.append(row, now)
    except OSError as exc:
        log.error("%s %s to %s was sent but neither the store (%s) nor %s could record it (%s): it may be sent "
                  "again once its claim expires", row.session, row.rule_id, row.channel, error, run.journal.path, exc)
        run.report.errors.append(f"{row.channel}: sent, not recorded: {exc}")
        run.report.store_error = str(error)
        return
    run.report.unrecorded += 1
    run.report.journal = str(run.journal.path)
    run.report.store_error = str(error)
    log.error("%s %s to %s was sent but the store stays gone (%s): kept in %s, recorded on the next start",
              row.session, row.rule_id, row.channel, error, run.journal.path)


def _after_attempt(run: _Run, row, delivery: Delivery, now: datetime):
    store, settings, report, owner = run.store, run.settings, run.report, run.owner
    if delivery.ok:
        _record_sent(run, row, now)
        log.info("delivered %s %s to %s", row.session, row.rule_id, row.channel)
        return
    error = delivery.error
    attempts = row.attempts + 1
    give_up = delivery.permanent or attempts >= settings.notify.max_attempts
    wait = backoff(attempts, settings.notify.retry_base_seconds)
    if delivery.retry_after:
        wait = max(wait, timedelta(seconds=delivery.retry_after))
    try:
        mine = store.outbox.retry(row.id, owner, error, now + wait, failed=give_up)
    except StoreError as exc:  # not sent, so nothing is lost: the claim's lease brings the row back
        report.store_error = str(exc)
        log.error("%s %s to %s: the failed attempt could not be recorded (%s); the row is tried again when its "
                  "claim expires", row.session, row.rule_id, row.channel, exc)
        return
    if not mine:
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
                         f"{attempts} attempt(s): {error}. `closebell outbox --retry` sends it again.",
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
    return store.outbox.add(rows, now)
