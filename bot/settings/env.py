"""Secrets and deployment settings from the environment (or a git-ignored `.env`).

Secrets never come from YAML and are never logged: `redact` scrubs them from any
text before it reaches a log line or an error message.
"""

from __future__ import annotations

import os
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
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def withhold_outside_channels() -> list[str]:
    """Drop every setting in OUTSIDE from this process's environment; the channels that were set."""
    withheld = []
    for channel, names in OUTSIDE.items():
        if [os.environ.pop(name) for name in names if name in os.environ]:
            withheld.append(channel)
    return withheld


def get(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def redact(text: str) -> str:
    """Replace every secret value found in `text` by its name."""
    for name in SECRET_NAMES:
        value = os.environ.get(name)
        pieces = [value] + ([p.strip() for p in value.split(",")] if value and name in LIST_SECRETS else [])
        for piece in pieces:
            if piece and len(piece) >= 4:
                text = text.replace(piece, f"<{name}>")
    return text
