"""One session's job: evaluation -> alerts -> outbox -> delivery.

The same functions serve `check --send`, the daemon's job after each close,
catch-up and `replay`, so there is one way an alert comes to exist and one way
it leaves.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

import pandas as pd

from bot.errors import DataError
from bot.notify.alert import Alert, clean_values
from bot.notify.outbox import deliver, enqueue, now_utc

log = logging.getLogger(__name__)


def alerts_for(prepared, session, late: bool = False, muted=(), skip=()) -> list[tuple[Alert, object]]:
    """(Alert, the rule's notify list) for every rule that fires on `session`, is not muted nor skipped."""
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
    return out


def chart_renderer(prepared, rules, series_defs):
    """render(alert) -> PNG of the alert's series, or None if drawing fails (the alert goes without)."""
    units = {name: s.units for name, s in series_defs.items()}
    by_id = {r.id: r for r in rules}

    def render(alert):
        from bot.notify.charts import alert_chart
        try:
            return alert_chart(prepared.frame, by_id[alert.rule_id], alert.session, units)
        except Exception:  # a chart is a bonus, never a reason to lose the alert
            log.exception("chart for %s failed; sending without it", alert.rule_id)
            return None
    return render


def queue_session(store, prepared, rules, session, series_defs, settings, late=False, skip=()) -> int:
    """Store the session's alerts in the outbox (before any send). Returns rows newly queued."""
    pairs = alerts_for(prepared, session, late=late, muted=store.mutes(now_utc()), skip=skip)
    return enqueue(store, pairs, settings, chart_renderer(prepared, rules, series_defs))


def send_check(prepared, rules, session, settings, store, series_defs):
    """`check --send`: queue what fires on `session`, then deliver everything due."""
    if store is None:  # `check --data-dir` read CSV files; the outbox still lives in the store
        from bot.store import open_store
        store = open_store()
    queue_session(store, prepared, rules, session, series_defs, settings)
    return deliver(store, settings)


# -- the daemon's job for one session ------------------------------------------------------------

@dataclass
class Runtime:
    """What a session's job needs from the outside world, so `run` and `replay` share the job."""

    store: object
    config: object  # LiveConfig: .get() -> Loaded(series, settings, rules)
    fetch: Callable  # fetch(store, loaded, names, session) -> list[FetchResult]
    notifiers: dict | None = None  # channel -> notifier override (replay, tests)


@dataclass
class Outcome:
    session: date
    status: str  # "done" or "waiting" (data not in yet, deadline not reached)
    missing: dict = field(default_factory=dict)  # series -> why it is not there for the session
    skipped: list = field(default_factory=list)  # rules not evaluated for want of data
    queued: int = 0
    delivery: object = None

    def line(self) -> str:
        if self.status == "waiting":
            return f"{self.session}: waiting for {', '.join(self.missing)}"
        parts = [f"{self.session}: done", f"{self.queued} alert row(s) queued"]
        if self.delivery is not None:
            parts.append(self.delivery.line())
        if self.skipped:
            parts.append(f"skipped for stale data: {', '.join(self.skipped)}")
        return "; ".join(parts)


def expected_on(series, session) -> bool:
    """Whether a daily series should have a value for `session`.

    The bond market closes on some federal holidays when stocks trade (Columbus
    Day, Veterans Day): yields are not expected then, and are carried forward.
    """
    if series.frequency != "daily":
        return False
    if series.units == "percent":
        day = pd.Timestamp(session)
        return day not in _federal_holidays(day.year)
    return True


@functools.lru_cache(maxsize=8)
def _federal_holidays(year: int) -> frozenset:
    from pandas.tseries.holiday import USFederalHolidayCalendar
    return frozenset(USFederalHolidayCalendar().holidays(f"{year}-01-01", f"{year}-12-31"))


def missing_for(store, loaded, names, session, fetch_results) -> dict[str, str]:
    last = store.last_dates()
    failures = {r.series: "; ".join(r.errors) for r in fetch_results or [] if r.errors}
    out = {}
    for name in names:
        series = loaded.series[name]
        if expected_on(series, session) and (last.get(name) is None or last[name] < pd.Timestamp(session).date()):
            sources = " -> ".join(ref.source for ref in series.chain)
            why = failures.get(name) or f"no value yet from {sources}"
            out[name] = f"latest {last.get(name) or 'none'}; {why}"
    return out


def run_session(runtime: Runtime, session, late: bool = False, final: bool = True) -> Outcome:
    """Fetch, wait for the session's data (or give up at the deadline), evaluate, queue, deliver."""
    from bot.analysis import prepare, series_needed
    from bot.notify.outbox import admin_notice
    session = pd.Timestamp(session)
    day = session.date()
    store = runtime.store
    loaded = runtime.config.get()
    rules, settings = loaded.rules, loaded.settings
    names = series_needed(rules)
    store.run_started(day, now_utc(), late)
    results = runtime.fetch(store, loaded, names, session)
    missing = missing_for(store, loaded, names, session, results)
    outcome = Outcome(day, "waiting", missing)
    if missing and not final:
        log.info("session %s: waiting for %s", day, ", ".join(missing))
        return outcome
    prepared = prepare(rules, loaded.series, store=store, as_of=day)
    if session not in prepared.frame.sessions:
        raise DataError(f"no data at all for session {day}")
    outcome.skipped = [r.id for r in rules if set(r.series) & set(missing)]
    if missing:
        text = (f"Data late for {day}: " + "; ".join(f"{n} ({why})" for n, why in missing.items())
                + (f". Skipped: {', '.join(outcome.skipped)}." if outcome.skipped else "."))
        log.warning(text)
        admin_notice(store, settings, f"late:{day}", text, session=day)
    outcome.queued = queue_session(store, prepared, rules, session, loaded.series, settings, late=late,
                                   skip=set(outcome.skipped))
    outcome.delivery = deliver(store, settings, notifiers=runtime.notifiers)
    store.run_finished(day, now_utc(), outcome.line())
    outcome.status = "done"
    log.info("session %s", outcome.line())
    return outcome


def live_fetch(store, loaded, names, session):
    """The daemon's fetch: every needed series from its sources, incremental."""
    from bot.data.fetch import update
    return update(store, loaded.series, loaded.settings, names=names)
