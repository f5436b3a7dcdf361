"""One session's job: evaluation -> alerts -> outbox -> delivery.

The same functions serve `check --send`, the daemon's job after each close,
catch-up and `replay`, so there is one way an alert comes to exist and one way
it leaves.
"""

from __future__ import annotations

import logging

import pandas as pd

from bot.notify.alert import Alert, clean_values
from bot.notify.outbox import deliver, enqueue, now_utc

log = logging.getLogger(__name__)


def alerts_for(prepared, rules, session, late: bool = False, muted=()) -> list[tuple[Alert, object]]:
    """(Alert, the rule's notify list) for every rule that fires on `session` and is not muted."""
    ev = prepared.evaluation
    i = ev.frame.index_of(session)
    out = []
    for rule in ev.fired_on(i):
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


def queue_session(store, prepared, rules, session, series_defs, settings, late=False) -> int:
    """Store the session's alerts in the outbox (before any send). Returns rows newly queued."""
    pairs = alerts_for(prepared, rules, session, late=late, muted=store.mutes(now_utc()))
    return enqueue(store, pairs, settings, chart_renderer(prepared, rules, series_defs))


def send_check(prepared, rules, session, settings, store, series_defs=None):
    """`check --send`: queue what fires on `session`, then deliver everything due."""
    if store is None:
        from bot.store import open_store
        store = open_store()
    if series_defs is None:
        from bot.settings.load import load_series
        series_defs = load_series()
    queue_session(store, prepared, rules, session, series_defs, settings)
    return deliver(store, settings)
