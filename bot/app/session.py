"""The session job, and how an evaluation becomes alerts.

`SessionJob(app)` is what runs after each close (the daemon, catch-up,
replay, `run --once`): fetch, wait for the session's data or give up at the
deadline, evaluate, queue the alerts and notices, deliver, record the run.
`App` holds the verbs a user asks; this is the daemon's pipeline, beside the
pieces it stands on (`live_fetch`, `missing_for`, `alerts_for`).

The session job, `check --send` and replay all build alerts here
(`alerts_for`), so there is one way an alert comes to exist. Notifiers see the
resulting `Alert`s, never rules or frames.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from bot.app import results as R
from bot.app import tune
from bot.app.evaluation import Prepared, prepare, series_needed
from bot.clock import ET
from bot.data import calendar
from bot.engine.rules import names_in
from bot.errors import ClosebellError, DataError

if TYPE_CHECKING:
    from bot.notify.alert import Alert

log = logging.getLogger(__name__)


def alerts_for(prepared, session, late: bool = False, muted=(), skip=()) -> list[tuple[Alert, object]]:
    """(Alert, the rule's notify list) for every rule that fires on `session`, is not muted nor skipped."""
    from bot.notify.alert import Alert, clean_values  # deliberately lazy: check (stale) needs no notifier
    ev = prepared.evaluation
    i = ev.frame.index_of(session)
    out = []
    for rule in ev.fired_on(i):
        if rule.id in skip:
            continue
        if rule.id in muted:
            log.info("rule %s fired on %s but is muted", rule.id, pd.Timestamp(session).date())
            continue
        alert = Alert(rule_id=rule.id, session=pd.Timestamp(session).date(), severity=rule.severity,
                      title=rule.title, text=ev.message(rule, i), values=clean_values(ev.values(rule, i)),
                      late=late)
        out.append((alert, rule.notify))
    for rule in ev.resolved_on(i):  # Alertmanager's send_resolved: one notice the session a rule clears
        if rule.id in skip or rule.id in muted:
            continue
        clear = rule.clear_text or f"not ({rule.when_text})"
        held = f"for {rule.clear_for} sessions" if rule.clear_for > 1 else "today"
        alert = Alert(rule_id=rule.id, session=pd.Timestamp(session).date(), severity=rule.severity,
                      title=f"Resolved: {rule.title}", text=f"{rule.id} has cleared: {clear} held {held}.",
                      values=clean_values(ev.values(rule, i)), late=late, kind="resolved")
        out.append((alert, rule.notify))
    return out


def chart_renderer(prepared, rules, series_defs):
    """render(alert) -> PNG of the alert's series, or None if drawing fails (the alert goes without)."""
    units = {name: s.units for name, s in series_defs.items()}
    by_id = {r.id: r for r in rules}

    def render(alert):
        from bot.notify import charts  # deliberately lazy: as alerts_for
        try:
            return charts.alert_chart(prepared.frame, by_id[alert.rule_id], alert.session, units)
        except Exception:  # a chart is a bonus, never a reason to lose the alert
            log.exception("chart for %s failed; sending without it", alert.rule_id)
            return None
    return render


def missing_for(store, loaded, names, session, fetch_results, expects) -> dict[str, str]:
    """Series the rules read that should have a value for `session` and do not, with why."""
    last = store.last_dates()
    failures = {r.series: "; ".join(r.errors) for r in fetch_results or [] if r.errors}
    out = {}
    for name in names:
        series = loaded.series[name]
        if expects(series, session) and (last.get(name) is None or last[name] < pd.Timestamp(session).date()):
            sources = " -> ".join(ref.source for ref in series.chain)
            why = failures.get(name) or f"no value yet from {sources}"
            out[name] = f"latest {last.get(name) or 'none'}; {why}"
    return out


def missing_in(prepared, loaded, names, session, expects) -> dict[str, str]:
    """`missing_for` read from an evaluation instead of the store: a series expected on `session` whose
    last real value there is older (replay's fast path; the same answer for data that arrives in order)."""
    frame = prepared.frame
    i = frame.index_of(session)
    out = {}
    for name in names:
        series = loaded.series[name]
        if name in frame.age and expects(series, session) and frame.age[name][i] > 0:
            age = int(frame.age[name][i])
            latest = frame.sessions[i - age].date() if age <= i else "none"
            sources = " -> ".join(ref.source for ref in series.chain)
            out[name] = f"latest {latest}; no value yet from {sources}"
    return out


def live_fetch(store, loaded, names, session, today):
    """The daemon's fetch: every needed series from its sources, incremental. `today` (ET, from the
    clock) bounds what counts as a future date."""
    from bot.data.fetch import update  # deliberately lazy: requests and the sources only for live runs
    return update(store, loaded.series, loaded.settings, names=names, today=today)


class SessionJob:
    """The job for one session (and the catch-up over those missed), run on behalf of `app`: its clock,
    store, rules in force, fetcher, heartbeat URL and leader fence. It keeps no state of its own, so
    `app.session_job` may be built for each call."""

    def __init__(self, app):
        self.app = app

    @property
    def loaded(self):
        return self.app.loaded

    @property
    def store(self):
        return self.app.store

    @property
    def clock(self):
        return self.app.clock

    def deadline(self, session) -> datetime:
        return datetime.combine(pd.Timestamp(session).date(), self.loaded.settings.schedule.deadline, ET)

    def run_session(self, session, late: bool = False, final: bool = True,
                    evaluation: Prepared | None = None) -> R.SessionOutcome:
        """Fetch, wait for the session's data (or give up at the deadline), evaluate, queue, deliver.

        A session that cannot run (no data, sources down, store trouble) is recorded as failed with its
        reason and returned as such; it never raises a ClosebellError. `evaluation` (replay's fast path)
        is an evaluation already covering the session, computed point in time: the fetch and the
        re-evaluation are skipped and readiness is read from it.
        """
        session = pd.Timestamp(session)
        day = session.date()
        store = self.store
        store.run_started(day, self.clock.now(), late)
        try:
            outcome = self._session_job(session, late, final, evaluation)
        except ClosebellError as exc:
            outcome = R.SessionOutcome(day, "failed", reason=str(exc), late=late)
            log.error("session %s failed: %s", day, exc)
            store.run_finished(day, self.clock.now(), outcome.line(), status="failed")
            self._heartbeat(False, outcome.line())
            return outcome
        if outcome.status == "done":
            store.run_finished(day, self.clock.now(), outcome.line())
            self._heartbeat(True, outcome.line())
        elif outcome.status == "failed":  # evaluated what it could, but not every rule it should have
            log.error("session %s failed: %s", day, outcome.reason)
            store.run_finished(day, self.clock.now(), outcome.line(), status="failed")
            self._heartbeat(False, outcome.line())
            return outcome
        log.info("session %s", outcome.line())
        return outcome

    def _session_job(self, session, late, final, prepared) -> R.SessionOutcome:
        from bot.notify.delivery import admin_notice  # deliberately lazy: the outbox only when a session runs
        day = session.date()
        loaded = self.loaded
        rules, settings = loaded.rules, loaded.settings
        names = series_needed(rules)
        if prepared is None:
            results = (self.app.fetcher or live_fetch)(self.store, loaded, names, session, self.clock.today_et())
            missing = missing_for(self.store, loaded, names, session, results, calendar.expects_value)
        else:
            results, missing = [], missing_in(prepared, loaded, names, session, calendar.expects_value)
        outcome = R.SessionOutcome(day, "waiting", missing, late=late)
        if missing and not final:
            log.info("session %s: waiting for %s", day, ", ".join(missing))
            return outcome
        failures = [r for r in results or [] if r.errors and not r.ok]
        try:
            prepared = prepared or prepare(rules, loaded.series, store=self.store, as_of=day)
        except DataError:
            if failures:
                raise DataError(f"no data to evaluate: fetching failed for "
                                f"{', '.join(r.series for r in failures)} ({'; '.join(failures[0].errors)})") from None
            raise
        if session not in prepared.frame.sessions:
            raise DataError(f"no data at all for session {day}")
        outcome.skipped = [r.id for r in rules if set(r.series) & set(missing)
                           or (r.clear_when is not None and set(names_in(r.clear_when)) & set(missing))]
        if missing:
            text = (f"Data late for {day}: " + "; ".join(f"{n} ({why})" for n, why in missing.items())
                    + (f". Skipped: {', '.join(outcome.skipped)}." if outcome.skipped else "."))
            log.warning(text)
            admin_notice(self.store, settings, f"late:{day}", text, session=day, now=self.clock.now())
        outcome.queued = self.queue(prepared, session, late=late, skip=set(outcome.skipped))
        outcome.queued += self._queue_digest(prepared, session)
        self._notice_stale(session)
        outcome.delivery = self.app.deliver_due()
        outcome.status = "done"
        if outcome.skipped:  # a rule it should have evaluated was not: a failed run, run again at the next close
            outcome.status = "failed"
            outcome.reason = (f"could not evaluate {', '.join(outcome.skipped)} for want of data: "
                              + "; ".join(f"{n} ({why})" for n, why in missing.items())
                              + f" ({outcome.queued} alert row(s) queued for the other rules)")
        return outcome

    def queue(self, prepared, session, late=False, skip=()) -> int:
        """Store the session's alerts in the outbox (before any send). Returns rows newly queued.
        (`check --send` queues through here too.)"""
        from bot.notify.delivery import enqueue  # deliberately lazy: only when alerts are sent
        loaded = self.loaded
        pairs = alerts_for(prepared, session, late=late, muted=self.store.mutes(self.clock.now()), skip=skip)
        pairs = tune.mark_alerts(pairs, loaded)  # an alert of a rule tuned from the phone says so
        return enqueue(self.store, pairs, loaded.settings, chart_renderer(prepared, loaded.rules, loaded.series),
                       now=self.clock.now())

    def stale(self, as_of) -> list:
        """Series the rules read whose newest stored value is older than its sources can explain as of the
        session `as_of` (bot.data.freshness). `check` and `status` ask it too."""
        from bot.data.freshness import stale  # deliberately lazy: live data only, never with --data-dir
        loaded = self.loaded
        names = series_needed(loaded.rules)
        return stale({n: loaded.series[n] for n in names}, self.store.last_dates(), as_of,
                     self.store.last_release_dates())

    def _notice_stale(self, session):
        """One admin notice per stale episode (keyed by the series and the session it went stale), not one
        per evening; it names the rules that read the series."""
        from bot.notify.delivery import admin_notice  # deliberately lazy: the session job only
        loaded = self.loaded
        for row in self.stale(session):
            readers = [r.id for r in loaded.rules if row.series in r.needs]
            text = (f"Stale data: {row.line()}. Rules reading it: {', '.join(readers) or 'none'}. "
                    "`closebell sources` tests each feed.")
            log.warning(text)
            admin_notice(self.store, loaded.settings, f"stale:{row.series}:{row.since}", text,
                         session=row.since, now=self.clock.now())  # keyed by the episode, not the evening

    def _queue_digest(self, prepared, session) -> int:
        """settings `digest: daily|weekly`: one message after the run, through the outbox (so exactly once)."""
        from bot.app.digest import digest_text, due  # deliberately lazy: explain's text, for digests only
        from bot.notify.alert import Alert  # deliberately lazy: as above
        from bot.notify.delivery import enqueue  # deliberately lazy: the session job only
        settings = self.loaded.settings
        if not due(settings.digest, session.date(), calendar.next_session(session).date()):
            return 0
        ev = prepared.evaluation
        i = ev.frame.index_of(session)
        text = digest_text(ev, i, [r.id for r in ev.fired_on(i)])
        alert = Alert(rule_id=f"digest:{settings.digest}", session=session.date(), severity="info", title="Closebell digest",
                      text=text, kind="digest")
        return enqueue(self.store, [(alert, None)], settings, now=self.clock.now())

    def _heartbeat(self, ok: bool, detail: str):
        if not self.app.heartbeat_url:
            return
        from bot.notify.heartbeat import ping  # deliberately lazy: only with HEARTBEAT_URL set
        ping(self.app.heartbeat_url, ok, detail)

    def sessions_due(self) -> list[pd.Timestamp]:
        """Sessions whose run time has passed since the last completed run, oldest first.

        A first start evaluates the latest session only: history is for `backtest`, not for alerts."""
        from bot.app.schedule import sessions_due  # deliberately lazy: the daemon's schedule only
        schedule = self.loaded.settings.schedule
        last_done = self.store.last_done_session()
        limit = schedule.catch_up_sessions if last_done else min(1, schedule.catch_up_sessions)
        if last_done is None:
            return sessions_due(self.clock.now(), schedule.offset_minutes, limit=limit)
        missed = sessions_due(self.clock.now(), schedule.offset_minutes, after=last_done, limit=10_000)
        if len(missed) > limit:
            self._notice_missed(missed[:len(missed) - limit], limit)
        return missed[max(len(missed) - limit, 0):] if limit else []

    def _notice_missed(self, skipped, limit: int):
        """Sessions missed beyond the catch-up window are not evaluated (no burst of stale alerts), and the
        user hears which, once."""
        from bot.notify.delivery import admin_notice  # deliberately lazy: the outbox only for the daemon's jobs
        first, last = skipped[0].date(), skipped[-1].date()
        text = (f"Closebell was not running for {len(skipped) + limit} session(s): {first} .. {last} "
                f"({len(skipped)}) were not evaluated (more than schedule.catch_up_sessions = {limit} missed); "
                f"the latest {limit} are caught up now. `closebell backtest --from {first} --to {last}` shows "
                "what would have fired.")
        log.warning(text)
        admin_notice(self.store, self.loaded.settings, f"missed:{first}:{last}", text, session=last,
                     now=self.clock.now())

    def run_due(self, session) -> R.SessionOutcome:
        """The job for `session` as the clock stands: late after the deadline, final at it."""
        now = self.clock.now()
        deadline = self.deadline(session)
        return self.run_session(session, late=now > deadline, final=now >= deadline)

    def catch_up(self, should_stop=lambda: False, run=None) -> list[R.SessionOutcome]:
        """Every session missed since the last completed run, oldest first, each through `run` (default
        `run_due`; the daemon passes its own, which also schedules a look again while data is late)."""
        run = run or self.run_due
        due = self.sessions_due()
        if due:
            log.info("catching up %d session(s): %s", len(due), ", ".join(f"{d:%Y-%m-%d}" for d in due))
        outcomes = []
        for session in due:
            if should_stop():
                break
            outcomes.append(run(session))
        return outcomes
