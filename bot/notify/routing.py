"""Which channels an alert goes to: the rule's `notify:`, else by severity, else the default.

The default (no `notify.default` in settings.yaml) is every configured
channel, console always: a user who sets TELEGRAM_BOT_TOKEN and
TELEGRAM_CHAT_IDS gets alerts on the phone without also editing YAML. A
rule's `notify:` narrows that.

A channel that is asked for but not configured (no token in the environment)
falls back to the console with a warning, so an alert is never silently lost.
Telegram expands to one outbox row per chat, so a failure for one chat never
causes a second message to another.

The bot's own trouble (late or stale data, failed deliveries and runs, a bad
edit) goes to `notify.admin`; unset, to the first configured phone channel in
ADMIN_PREFERENCE, so a user who configured Telegram hears about trouble there
without editing YAML. With no phone channel it goes to the log only.
"""

from __future__ import annotations

import logging

from bot.notify.registry import NOTIFIERS, configured, make_notifier, notifier_module

log = logging.getLogger(__name__)


def configured_channels() -> list[str]:
    """Every channel whose settings are in the environment; the console always is."""
    return [name for name in NOTIFIERS if name == "console" or configured(name)]


ADMIN_PREFERENCE = ("telegram", "apprise", "email")  # the channels a person reads on the move, first first


def admin_channel(settings) -> str | None:
    """Where the bot reports its own trouble: `notify.admin`, else the first configured channel of
    ADMIN_PREFERENCE, else None (the log only)."""
    if settings.notify.admin is not None:
        return settings.notify.admin
    return next((name for name in ADMIN_PREFERENCE if configured(name)), None)


def channels_for(notify, severity: str, settings) -> list[str]:
    if notify is not None:
        return list(notify)
    by_severity = settings.notify.by_severity.get(severity)
    if by_severity:
        return list(by_severity)
    if settings.notify.default is not None:
        return list(settings.notify.default)
    return configured_channels()


def destinations(channels: list[str]) -> list[str]:
    """Outbox channel keys: 'console', 'email', 'telegram:<chat id>' for each chat."""
    out: list[str] = []
    for channel in channels:
        if not configured(channel):
            needs = ", ".join(notifier_module(channel).REQUIRED_ENV)
            log.warning("channel %s is not configured (set %s); sending to the console instead", channel, needs)
            channel = "console"
        recipients = make_notifier(channel, None).recipients()
        for recipient in recipients:
            key = f"{channel}:{recipient}" if recipient else channel
            if key not in out:
                out.append(key)
    return out
