"""Which module delivers each channel: the registry, read top to bottom.

Each channel name used in YAML (`notify: [telegram]`; the names themselves are
`bot.settings.models.Channel`) maps to the module that delivers it. A module
is imported on first use: reading its REQUIRED_ENV to see whether the channel
is configured costs little, because every notifier module imports its
library (python-telegram-bot, apprise) only when it sends.

Every notifier module has REQUIRED_ENV (the settings that make it configured)
and a `Notifier(settings, clock=None)` with `recipients()`, `units(alerts)`
(which alerts go as one message: see bot.notify.base) and
`send(recipient, alerts, charts, record)`.
"""

from __future__ import annotations

import importlib

from bot.settings import env

NOTIFIERS = {
    "console": "bot.notify.console",  # readable lines on stdout; the default
    "telegram": "bot.notify.telegram",  # python-telegram-bot; TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_IDS
    "email": "bot.notify.email",  # smtplib; SMTP_HOST, EMAIL_FROM, EMAIL_TO, ...
    "apprise": "bot.notify.apprise_channel",  # ntfy, Pushover, Discord, Slack, ... ; APPRISE_URLS
}


def notifier_module(channel: str):
    return importlib.import_module(NOTIFIERS[channel])


def missing_env(channel: str) -> list[str]:
    """The settings the channel needs that the environment does not have."""
    return [name for name in notifier_module(channel).REQUIRED_ENV if not env.get(name)]


def configured(channel: str) -> bool:
    """True when every setting the channel requires is in the environment."""
    return not missing_env(channel)


def make_notifier(channel: str, settings, clock=None):
    """The channel's notifier; `clock` (default: the system clock) decides quiet hours."""
    return notifier_module(channel).Notifier(settings, clock=clock)
