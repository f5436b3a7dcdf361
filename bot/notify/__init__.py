"""The edge that talks to people: one notifier per channel, an outbox between them and the engine.

Among its modules (one per channel besides: console, telegram, email, apprise_channel):

    registry.py  channel name -> notifier module      routing.py  which channels an alert goes to
    delivery.py  queued, then sent once              alert.py    what notifiers see
    quiet.py     quiet hours                         charts.py   PNGs for phones

This package also answers "what is configured, and where do the rules go"
(`channel_report`), for notify-test, status and the run banner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.notify.registry import NOTIFIERS, configured, make_notifier, missing_env, notifier_module
from bot.notify.routing import admin_channel, channels_for

__all__ = ["NOTIFIERS", "ChannelStatus", "channel_report", "configured", "make_notifier", "missing_env",
           "notifier_module"]


@dataclass(frozen=True)
class ChannelStatus:
    """One line of the channel report shown by notify-test, status and the run banner."""

    channel: str
    configured: bool
    why_not: str = ""  # what to set when not configured, e.g. "set TELEGRAM_CHAT_IDS"
    recipients: int = 0  # chats, addresses or services that receive each alert
    rules: list[str] = field(default_factory=list)  # rule ids routed to this channel
    warning: str = ""  # configured but no rule routes here; or routed here but not configured
    admin: bool = False  # the bot's own trouble is reported here (bot.notify.routing.admin_channel)

    def line(self) -> str:
        state = (f"configured, {self.recipients} recipient{'s' if self.recipients != 1 else ''}"
                 if self.configured else f"not configured ({self.why_not})")
        text = f"{self.channel}: {state}; {len(self.rules)} rule{'s' if len(self.rules) != 1 else ''}"
        return f"{text}; warning: {self.warning}" if self.warning else text


def channel_report(settings, rules) -> list[ChannelStatus]:
    """Per channel: configured or not (and why), recipients, the rules routed to it, and what looks wrong.

    `rules` are parsed rules (anything with `.id`, `.notify` and `.severity`).
    A rule routed to a channel that is not configured goes to the console
    instead (bot.notify.routing), so it is listed under both.
    """
    routed: dict[str, list[str]] = {name: [] for name in NOTIFIERS}
    for rule in rules:
        for channel in channels_for(rule.notify, rule.severity, settings):
            if channel in routed and rule.id not in routed[channel]:
                routed[channel].append(rule.id)
            if channel != "console" and channel in NOTIFIERS and not configured(channel) \
                    and rule.id not in routed["console"]:
                routed["console"].append(rule.id)
    admin = admin_channel(settings)
    report = []
    for name in NOTIFIERS:
        missing = missing_env(name)
        ok = not missing
        why_not = "" if ok else f"set {', '.join(missing)}"
        count = len(make_notifier(name, None).recipients()) if ok else 0
        warning = ""
        if ok and name != "console" and not routed[name]:
            warning = ("configured but no rule routes to it (each rule's notify: or notify.default / "
                       "notify.by_severity in settings.yaml leaves it out)")
        elif not ok and routed[name]:
            warning = f"{len(routed[name])} rule(s) route here but it is not configured: they go to the console"
        report.append(ChannelStatus(name, ok, why_not, count, routed[name], warning, admin=name == admin))
    return report
