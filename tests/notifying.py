"""What the notifier tests share: an alert with characters HTML must escape, a chart, and `send`
that collects the Delivery a notifier reports for each alert, in order."""

from __future__ import annotations

from datetime import date

from bot.notify.alert import Alert
from bot.settings.models import Settings

SETTINGS = Settings(notify={"telegram_pace_seconds": 0, "retry_base_seconds": 0})
PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 100


def alert(rule="small-cap-trap", severity="warning", title="Small caps <rally> & yields", text="IWM +4.1% & <b>"):
    return Alert(rule_id=rule, session=date(2024, 7, 11), severity=severity, title=title, text=text,
                 values={"pct_change(IWM, 5)": 4.1})


def send(notifier, recipient, alerts, charts=None):
    results = {}
    notifier.send(recipient, alerts, charts or {}, lambda i, d: results.__setitem__(i, d))
    return [results[i] for i in range(len(alerts))]


def burst(n):
    severities = ["warning", "info", "critical", "warning", "info", "warning"]
    return [alert(f"rule-{k}", severities[k % len(severities)], f"Title {k}") for k in range(n)]


def keyboard_of(call) -> list[list[dict]]:
    import json
    return json.loads(call.fields["reply_markup"])["inline_keyboard"]
