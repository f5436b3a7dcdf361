"""Console: readable lines on stdout, the default channel when nothing else is configured.

One line per alert starting with the session date and the rule id, so `replay`
output reads as "which alerts would I have received on which evening".
"""

from __future__ import annotations

import sys

from bot.notify.base import Delivery, single_units

REQUIRED_ENV: tuple[str, ...] = ()


class Notifier:
    channel = "console"

    def __init__(self, settings=None, clock=None, stream=None, environment=None):
        self.stream = stream or sys.stdout

    def recipients(self) -> list[str]:
        return [""]

    def units(self, alerts) -> list[list[int]]:
        return single_units(alerts)

    def send(self, recipient: str, alerts, charts, report) -> None:
        for i, alert in enumerate(alerts):
            late = " (late)" if alert.late else ""
            text = alert.text.replace("\n", "\n    ")  # continuation lines indented under the alert
            print(f"{alert.session:%Y-%m-%d} {alert.rule_id} [{alert.severity}]{late} {alert.title}: {text}",
                  file=self.stream, flush=True)
            report(i, Delivery(ok=True))
