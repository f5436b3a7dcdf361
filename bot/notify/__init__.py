"""The edge that talks to people: one notifier per channel, an outbox between them and the engine.

The registry below maps each channel name used in YAML (`notify: [telegram]`)
to the module that delivers it. A module is imported only when its channel is
configured, so a user without Telegram never loads python-telegram-bot.
"""

from __future__ import annotations

import importlib

NOTIFIERS = {
    "console": "bot.notify.console",  # readable lines on stdout; the default
    "telegram": "bot.notify.telegram",  # python-telegram-bot; TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_IDS
    "email": "bot.notify.email",  # smtplib; SMTP_HOST, EMAIL_FROM, EMAIL_TO, ...
}


def notifier_module(channel: str):
    return importlib.import_module(NOTIFIERS[channel])


def configured(channel: str) -> bool:
    """True when every setting the channel requires is in the environment."""
    from bot.settings import env
    return all(env.get(name) for name in notifier_module(channel).REQUIRED_ENV)


def make_notifier(channel: str, settings):
    return notifier_module(channel).Notifier(settings)
