"""From an evaluation to alerts: who fired on a session, with which text, values and chart.

The session job, `check --send` and replay all build alerts here, so there is
one way an alert comes to exist. Notifiers see the resulting `Alert`s, never
rules or frames.
"""

from __future__ import annotations

import logging

import pandas as pd

from bot.notify import charts
from bot.notify.alert import Alert, clean_values

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
