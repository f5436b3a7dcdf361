"""More phone channels through apprise: ntfy, Pushover, Discord, Slack, Matrix, Gotify and ~100 more.

Settings (environment only, handed in as bot.settings.env.Environment; never logged): APPRISE_URLS, comma separated
apprise URLs, e.g. `ntfys://ntfy.sh/my-topic,pover://user@token`. Each URL is
one recipient, so a failing service never causes a second message to another.
Its outbox key is `apprise:<8 hex of the URL's SHA-256>`: stable while the URL
is, and it reveals nothing of the URL's secrets.

The module is named apprise_channel so that it does not shadow the `apprise`
package. The chart goes as a PNG attachment; services that take none get the
text alone (apprise drops the attachment for them).
"""

from __future__ import annotations

import hashlib
import logging
import re

from bot.notify.base import Delivery, grouped_units
from bot.settings.env import Environment, current

log = logging.getLogger(__name__)

REQUIRED_ENV = ("APPRISE_URLS",)
TIMEOUT = 30  # seconds for one service
_URL_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")


class _NoUrls(logging.Filter):
    """apprise's own log lines name the URL (tokens, topics, webhook paths): drop its debug chatter, scrub the rest."""

    def filter(self, record):
        if record.levelno < logging.WARNING:
            return False
        record.msg, record.args = _URL_RE.sub("<apprise url>", record.getMessage()), ()
        return True


def _quiet_apprise_logs() -> None:
    logger = logging.getLogger("apprise")
    if not any(isinstance(f, _NoUrls) for f in logger.filters):
        logger.addFilter(_NoUrls())


def urls(environment: Environment | None = None) -> list[str]:
    return list((environment if environment is not None else current()).apprise_urls)


def key(url: str) -> str:
    """The recipient key of one URL: a short hash, so nothing secret reaches the outbox, a log or `status`."""
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def notify_type(severity: str):
    from apprise import NotifyType  # deliberately lazy: apprise (~0.2 s with its plugins) only when sending
    return {"info": NotifyType.INFO, "warning": NotifyType.WARNING, "critical": NotifyType.FAILURE}.get(
        severity, NotifyType.INFO)


def title_and_body(alerts) -> tuple[str, str]:
    """One alert: its title, and heading + text; several: a count, and one line per alert, most severe first."""
    if len(alerts) == 1:
        alert = alerts[0]
        late = " (late)" if alert.late else ""
        return alert.title or alert.rule_id, f"{alert.session:%a %Y-%m-%d} · {alert.rule_id} · " \
                                             f"{alert.severity}{late}\n{alert.text}".rstrip()
    ranked = sorted(alerts, key=lambda a: -a.rank)
    lines = [f"[{a.severity}] {a.session:%m-%d} {a.title or a.rule_id} ({a.rule_id})" for a in ranked]
    return f"Closebell: {len(alerts)} alerts", "\n".join(lines)


class Notifier:
    channel = "apprise"

    def __init__(self, settings=None, clock=None, environment: Environment | None = None):
        self.settings = settings
        self.env = environment if environment is not None else current()

    def recipients(self) -> list[str]:
        return [key(u) for u in urls(self.env)]

    def units(self, alerts) -> list[list[int]]:
        return grouped_units(alerts, self.settings)

    def send(self, recipient: str, alerts, charts, report) -> None:
        url = next((u for u in urls(self.env) if key(u) == recipient), None)
        for unit in self.units(alerts):
            if url is None:
                delivery = Delivery(False, f"no URL in APPRISE_URLS has key apprise:{recipient} any more "
                                           "(was APPRISE_URLS changed?)", permanent=True)
            else:
                delivery = self._send_unit(recipient, url, [alerts[i] for i in unit], [charts.get(i) for i in unit])
            for i in unit:
                report(i, delivery)

    def _send_unit(self, recipient, url, alerts, charts) -> Delivery:
        # deliberately lazy: apprise loads its plugins on import; only when sending, as above
        import apprise
        from apprise.attachment.memory import AttachMemory  # deliberately lazy: as above
        _quiet_apprise_logs()
        service = apprise.Apprise()
        if not service.add(url):
            return Delivery(False, f"apprise:{recipient}: not a URL apprise understands (check APPRISE_URLS)",
                            permanent=True)
        worst = max(range(len(alerts)), key=lambda i: alerts[i].rank)
        chart = charts[worst] or next((c for c in charts if c), None)
        attach = None
        if chart:
            attach = apprise.AppriseAttachment()
            attach.add(AttachMemory(content=chart, name=f"{alerts[worst].rule_id}-{alerts[worst].session}.png",
                                    mimetype="image/png"))
        title, body = title_and_body(alerts)
        try:
            result = service.notify(body=body, title=title, notify_type=notify_type(alerts[worst].severity),
                                    attach=attach, timeout=TIMEOUT)
        except Exception as exc:  # apprise reports per service; anything raised is a failed attempt
            return Delivery(False, f"apprise:{recipient}: {type(exc).__name__}")
        if result:
            return Delivery(True)
        name = getattr(service[0], "service_name", "service") if len(service) else "service"
        return Delivery(False, f"apprise:{recipient} ({name}): the service did not accept the notification")
