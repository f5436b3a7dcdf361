"""The rule book and what it sent, as text: /rules (each rule, muted, last fired, tuned) and /last."""

from __future__ import annotations

from bot.clock import ET


def rules_lines(overview) -> list[str]:
    """Each rule (a RuleOverview): id, severity, muted until, title, last fired, an override from the phone."""
    out = []
    for rule in overview:
        muted = f" (muted until {rule.muted_until.astimezone(ET):%m-%d %H:%M})" if rule.muted_until else ""
        last = f"{rule.last_fired:%Y-%m-%d}" if rule.last_fired else "never"
        out.append(f"{rule.id} [{rule.severity}]{muted}\n  {rule.title}; last fired {last}")
        if rule.tuned:
            out.append(f"  {rule.tuned} (/tune {rule.id})")
    return out or ["No rules."]


def last_alerts_lines(alerts) -> list[str]:
    """The last alerts sent, newest last: session, rule, text."""
    return [f"{a.session:%Y-%m-%d} {a.rule_id}: {a.text}" for a in alerts] or ["No alerts sent yet."]
