"""The environment's settings validated by pydantic-settings: each bad value is one line saying what to write.

Imported by bot.settings.env only when one of these variables is set (pydantic-settings costs ~110 ms to
import, which a `check` without channels should not pay). The model reads `os.environ`, into which
bot.settings.env.load_dotenv has already merged `.env` (the environment winning), and is turned into the
plain `Environment` record the rest of the bot is handed, so no module below it reads the environment.
"""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings.env import SECRET_NAMES, Environment

_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")  # a chat id, or a public channel's @name
_URL = re.compile(r"https?://[^\s/]+\S*")
_ADDRESS = re.compile(r"[^@\s,;<>]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")

# What each variable must hold, and an example of it: the second half of every error line.
WRITE = {
    "TELEGRAM_BOT_TOKEN": "the token @BotFather gave, e.g. TELEGRAM_BOT_TOKEN=123456:ABC-DEF...",
    "TELEGRAM_CHAT_IDS": "chat ids separated by commas, e.g. TELEGRAM_CHAT_IDS=123456789,-1001234567890 "
                         "(`closebell telegram-setup --write` finds yours)",
    "TELEGRAM_BASE_URL": "the http(s) address of a self-hosted Bot API server, e.g. "
                         "TELEGRAM_BASE_URL=http://127.0.0.1:8081, or leave it out",
    "SMTP_HOST": "the mail server's host name, e.g. SMTP_HOST=smtp.example.com",
    "SMTP_PORT": "a port number from 1 to 65535, e.g. SMTP_PORT=587 (STARTTLS) or SMTP_PORT=465 (SSL)",
    "SMTP_USER": "the login name, e.g. SMTP_USER=me@example.com",
    "SMTP_PASSWORD": "the password for SMTP_USER",
    "SMTP_SECURITY": "ssl, starttls or none, e.g. SMTP_SECURITY=starttls, or leave it out to choose by port",
    "EMAIL_FROM": "one address, e.g. EMAIL_FROM=closebell@example.com",
    "EMAIL_TO": "addresses separated by commas, e.g. EMAIL_TO=me@example.com,partner@example.com",
    "APPRISE_URLS": "apprise URLs separated by commas, e.g. APPRISE_URLS=ntfys://ntfy.sh/my-secret-topic",
    "HEARTBEAT_URL": "an http(s) ping URL, e.g. HEARTBEAT_URL=https://hc-ping.com/<uuid>",
    "FRED_API_KEY": "the 32-character key from fred.stlouisfed.org",
    "DATABASE_URL": "e.g. DATABASE_URL=postgresql://user:password@host:5432/closebell",
}


def _pieces(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


class EnvironmentModel(BaseSettings):
    """Every secret and deployment setting the bot reads; secrets as SecretStr, never shown in a repr."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore")

    TELEGRAM_BOT_TOKEN: SecretStr | None = None
    TELEGRAM_CHAT_IDS: str | None = None
    TELEGRAM_BASE_URL: str | None = None
    SMTP_HOST: str | None = None
    SMTP_PORT: int | None = Field(default=None, ge=1, le=65535)
    SMTP_USER: str | None = None
    SMTP_PASSWORD: SecretStr | None = None
    SMTP_SECURITY: str | None = None
    EMAIL_FROM: str | None = None
    EMAIL_TO: str | None = None
    APPRISE_URLS: SecretStr | None = None
    HEARTBEAT_URL: SecretStr | None = None
    FRED_API_KEY: SecretStr | None = None
    DATABASE_URL: SecretStr | None = None  # parsed, with its own errors (exit 4), by bot.store.connect

    @field_validator("TELEGRAM_CHAT_IDS")
    @classmethod
    def _chats(cls, value):
        bad = [p for p in _pieces(value) if not _CHAT.fullmatch(p)]
        if bad or (value is not None and not _pieces(value)):
            raise ValueError(f"{bad[0]!r} is not a chat id" if bad else "no chat id")
        return value

    @field_validator("TELEGRAM_BASE_URL")
    @classmethod
    def _base_url(cls, value):
        if value is not None and not _URL.fullmatch(value.strip()):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("HEARTBEAT_URL")
    @classmethod
    def _heartbeat(cls, value):
        if value is not None and not _URL.fullmatch(value.get_secret_value().strip()):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("SMTP_SECURITY")
    @classmethod
    def _security(cls, value):
        if value is not None and value.strip().lower() not in ("ssl", "starttls", "none"):
            raise ValueError("not one of ssl, starttls, none")
        return value

    @field_validator("EMAIL_TO")
    @classmethod
    def _to(cls, value):
        bad = [p for p in _pieces(value) if not _ADDRESS.fullmatch(p)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an address")
        return value

    @field_validator("EMAIL_FROM")
    @classmethod
    def _sender(cls, value):
        if value is not None and not _ADDRESS.search(value):
            raise ValueError("not an address")
        return value


def _problem(error: dict) -> str:
    name = str(error["loc"][0]) if error.get("loc") else "?"
    given = error.get("input")
    if name in SECRET_NAMES or not isinstance(given, str):
        shown = f"{name} (value withheld: it is a secret)" if name in SECRET_NAMES else name
    else:
        shown = f"{name}={given[:60]}"
    why = str(error.get("ctx", {}).get("error") or "") or {
        "int_parsing": "not a whole number", "greater_than_equal": "below 1",
        "less_than_equal": "above 65535"}.get(error.get("type"), error.get("msg", "not valid"))
    return f"environment: {shown}: {why}; write {WRITE.get(name, 'a valid value')}"


def read(origins: dict[str, str] | None = None) -> Environment:
    """The one Environment, validated; ConfigError with one line per bad value (`origins`: where a value
    set by a `.env` came from, `path:line:1`, so the line names the file to edit)."""
    try:
        model = EnvironmentModel()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            line = _problem(error)
            name = str(error["loc"][0]) if error.get("loc") else ""
            if origins and name in origins:
                line = line.replace("environment: ", f"{origins[name]}: ", 1)
            lines.append(line)
        raise ConfigError(lines) from None

    def secret(value):
        return value.get_secret_value() if value is not None else None

    return Environment(
        telegram_bot_token=secret(model.TELEGRAM_BOT_TOKEN), telegram_chat_ids=tuple(_pieces(model.TELEGRAM_CHAT_IDS)),
        telegram_base_url=model.TELEGRAM_BASE_URL, smtp_host=model.SMTP_HOST, smtp_port=model.SMTP_PORT,
        smtp_user=model.SMTP_USER, smtp_password=secret(model.SMTP_PASSWORD),
        smtp_security=model.SMTP_SECURITY.strip().lower() if model.SMTP_SECURITY else None,
        email_from=model.EMAIL_FROM, email_to=tuple(_pieces(model.EMAIL_TO)),
        apprise_urls=tuple(_pieces(secret(model.APPRISE_URLS))), heartbeat_url=secret(model.HEARTBEAT_URL),
        fred_api_key=secret(model.FRED_API_KEY), database_url=secret(model.DATABASE_URL))

