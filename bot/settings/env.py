"""Secrets and deployment settings from the environment (or a git-ignored `.env`), read once into one object.

`load_dotenv` merges `.env` into the process environment (the environment wins; the file is read bounded,
like every settings file). `current()` then gives the one `Environment`: validated by pydantic-settings
(bot.settings.environment) with one line per bad value, at start-up (bot.cli), and handed to the
notifiers, which never read the environment themselves. Secrets never come from YAML and are never
logged: `redact` scrubs them from any text before it reaches a log line or an error message, and an
Environment's repr shows whether a secret is set, never its value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from bot.errors import ConfigError
from bot.settings.paths import read_small

SECRET_NAMES = ("TELEGRAM_BOT_TOKEN", "SMTP_PASSWORD", "FRED_API_KEY", "DATABASE_URL", "HEARTBEAT_URL",
                "APPRISE_URLS")
LIST_SECRETS = ("APPRISE_URLS",)  # comma-separated: each piece is a secret of its own

# Every setting that lets a message leave the machine, by what it reaches: a replay drops them all unless
# asked to send (`replay --send`), so history is printed, never pushed to a phone.
OUTSIDE = {
    "telegram": ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_IDS"),
    "email": ("SMTP_HOST", "EMAIL_TO"),
    "apprise": ("APPRISE_URLS",),
    "heartbeat": ("HEARTBEAT_URL",),
}

# python-telegram-bot: RetryAfter.retry_after as a timedelta, as PTB 23 will give. A library switch, not a
# setting; set here because bot/notify reads no environment, and every notifier imports this module.
os.environ.setdefault("PTB_TIMEDELTA", "1")


@dataclass(frozen=True)
class Environment:
    """Every secret and deployment setting, typed: what the notifiers, the sources and the heartbeat are
    handed. Lists are tuples of their comma-separated pieces; an unset or empty variable is None or ()."""

    telegram_bot_token: str | None = None
    telegram_chat_ids: tuple[str, ...] = ()
    telegram_base_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: str | None = None  # ssl | starttls | none, lower case
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    apprise_urls: tuple[str, ...] = ()
    heartbeat_url: str | None = None
    fred_api_key: str | None = None
    database_url: str | None = None

    def get(self, name: str) -> str | None:
        """The variable `name` (e.g. "SMTP_PORT") as text, None when unset."""
        value = getattr(self, name.lower())
        if isinstance(value, tuple):
            return ",".join(value) or None
        return None if value is None else str(value)

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.upper() in SECRET_NAMES:
                value = "<set>" if value else None
            shown.append(f"{f.name}={value!r}" if value not in (None, ()) else "")
        return f"Environment({', '.join(s for s in shown if s)})"


NAMES = tuple(f.name.upper() for f in fields(Environment))
EMPTY = Environment()

_current: tuple[tuple, Environment] | None = None
_origins: dict[str, str] = {}  # NAME -> "path:line:1" of the .env line that set it


def current() -> Environment:
    """The one Environment, validated (ConfigError: one line per bad value).

    Read once: it is rebuilt only when one of its variables changes in the process environment (a test
    pointing a channel at its stand-in, replay withholding the outside channels). With none of them set
    it is EMPTY, without importing pydantic-settings, so a command without channels pays nothing for it.
    """
    global _current
    key = tuple(os.environ.get(name) or None for name in NAMES)
    if _current is not None and _current[0] == key:
        return _current[1]
    if not any(key):
        environment = EMPTY
    else:
        from bot.settings import environment as model  # deliberately lazy: pydantic-settings, ~110 ms
        environment = model.read(_origins)
    _current = (key, environment)
    return environment


def load_dotenv(path: str | Path = ".env") -> None:
    """Set variables from `.env` that the environment does not set already (the environment wins)."""
    path = Path(path)
    if not path.exists():
        return
    try:  # bounded and never blocking, like every settings file (bot.settings.paths.read_small)
        text = read_small(path).decode("utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        if isinstance(exc, UnicodeDecodeError):
            reason = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigError(f"{path}:1:1: {reason}") from None
    import io  # deliberately lazy: only with a .env
    from dotenv import dotenv_values  # deliberately lazy: python-dotenv only with a .env
    for key, value in dotenv_values(stream=io.StringIO(text)).items():
        if value is None or key in os.environ:
            continue
        os.environ[key] = value
        line = re.search(rf"^[ \t]*(?:export[ \t]+)?{re.escape(key)}[ \t]*=", text, re.MULTILINE)
        _origins[key] = f"{path}:{text.count(chr(10), 0, line.start()) + 1 if line else 1}:1"


def withhold_outside_channels() -> list[str]:
    """Drop every setting in OUTSIDE from this process's environment; the channels that were set."""
    withheld = []
    for channel, names in OUTSIDE.items():
        if [os.environ.pop(name) for name in names if name in os.environ]:
            withheld.append(channel)
    return withheld


def get(name: str, default: str | None = None) -> str | None:
    """One setting of the current Environment as text (`default` when unset)."""
    value = current().get(name)
    return value if value is not None else default


def redact(text: str) -> str:
    """Replace every secret value found in `text` by its name."""
    for name in SECRET_NAMES:
        value = os.environ.get(name)
        pieces = [value] + ([p.strip() for p in value.split(",")] if value and name in LIST_SECRETS else [])
        for piece in pieces:
            if piece and len(piece) >= 4:
                text = text.replace(piece, f"<{name}>")
    return text
