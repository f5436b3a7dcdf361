"""Which module delivers each channel: the registry, read top to bottom.

Each channel name used in YAML (`notify: [telegram]`; the names themselves are
`bot.settings.models.Channel`) maps to the module that delivers it. A module
is imported on first use: reading its REQUIRED_ENV to see whether the channel
is configured costs little, because every notifier module imports its
library (python-telegram-bot, apprise) only when it sends.

Every notifier module has REQUIRED_ENV (the settings that make it configured)
and a `Notifier(settings, clock=None, environment=None)` with `recipients()`,
`units(alerts)` (which alerts go as one message: see bot.notify.base) and
`send(recipient, alerts, charts, record)`. Its secrets come in `environment`
(bot.settings.env.Environment, read once at start-up), handed over here: no
module of bot/notify reads the process environment (tests/test_settings.py).
"""

from __future__ import annotations

import importlib

from bot.settings.env import Environment, current

NOTIFIERS = {
    "console": "bot.notify.console",  # readable lines on stdout; the default
    "telegram": "bot.notify.telegram",  # python-telegram-bot; TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_IDS
    "email": "bot.notify.email",  # smtplib; SMTP_HOST, EMAIL_FROM, EMAIL_TO, ...
    "apprise": "bot.notify.apprise_channel",  # ntfy, Pushover, Discord, Slack, ... ; APPRISE_URLS
}


def notifier_module(channel: str):
    return importlib.import_module(NOTIFIERS[channel])


def missing_env(channel: str, environment: Environment | None = None) -> list[str]:
    """The settings the channel needs that the environment (default: the current one) does not have."""
    environment = environment if environment is not None else current()
    return [name for name in notifier_module(channel).REQUIRED_ENV if not environment.has(name)]


def configured(channel: str, environment: Environment | None = None) -> bool:
    """True when every setting the channel requires is in the environment."""
    return not missing_env(channel, environment)


def make_notifier(channel: str, settings, clock=None, environment: Environment | None = None):
    """The channel's notifier, handed its secrets; `clock` (default: the system clock) decides quiet hours."""
    return notifier_module(channel).Notifier(settings, clock=clock, environment=environment)
