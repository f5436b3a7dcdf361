"""Finding the chat id for TELEGRAM_CHAT_IDS, so nobody has to dig it out of the Bot API by hand.

With TELEGRAM_BOT_TOKEN set: `bot_username()` asks Telegram who the bot is
(getMe); the user sends the bot any message (or adds it to a group and writes
there); `wait_for_chats()` long-polls getUpdates until a message arrives and
returns each chat that wrote. `write_chat_ids()` then creates or updates the
one TELEGRAM_CHAT_IDS line in `.env`, leaving every other line as it was.

Every failure is a DeliveryError (exit 5) saying what to do, and no message
ever carries the token: invalid token (401), a webhook set on the bot (409,
with how to remove it), another program polling the bot (409), no message
before the timeout, no network.

Only the `telegram-setup` verb imports this module (through bot.app.setup), so
python-telegram-bot is imported at its top.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from telegram import error

from bot.errors import ConfigError, DeliveryError
from bot.notify.telegram import make_bot
from bot.settings import env
from bot.settings.paths import config_dir

log = logging.getLogger(__name__)

POLL_SECONDS = 25  # one getUpdates long poll; the whole wait is `timeout`
KEY = "TELEGRAM_CHAT_IDS"
_LINE_RE = re.compile(rf"^\s*(export\s+)?{KEY}\s*=")


@dataclass(frozen=True)
class Chat:
    id: int
    type: str  # private | group | supergroup | channel
    name: str  # a group's title, else @username, else the first name

    def line(self) -> str:
        return f"{self.id}  {self.type}  {self.name}"


def _fail(message: str) -> DeliveryError:
    return DeliveryError("telegram-setup", env.redact(message), permanent=True)


def _where() -> str:
    return env.get("TELEGRAM_BASE_URL") or "https://api.telegram.org"


def _require_token() -> None:
    if not env.get("TELEGRAM_BOT_TOKEN"):
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather in Telegram (/newbot), "
                          "then put TELEGRAM_BOT_TOKEN=<the token it gives> in .env")


def _explain(exc) -> DeliveryError:
    """A python-telegram-bot exception as an error the user can act on (never showing the token)."""
    text = env.redact(str(exc))
    if isinstance(exc, error.InvalidToken):
        return _fail("Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): copy the token again from "
                     "@BotFather (/mybots, your bot, API Token) into .env")
    if isinstance(exc, error.Conflict):
        if "webhook" in text.lower():
            return _fail("a webhook is set on this bot, so its messages cannot be read with getUpdates "
                         "(409 Conflict). Remove it with `closebell telegram-setup --delete-webhook` "
                         "(this calls the Bot API's deleteWebhook), then run this again")
        return _fail(f"another program is reading this bot's messages (409 Conflict: {text}); stop it "
                     "(e.g. a running `closebell run`) and run this again")
    if isinstance(exc, (error.TimedOut, error.NetworkError)):
        return _fail(f"cannot reach Telegram at {_where()}: {text} (check the network, a proxy or "
                     "TELEGRAM_BASE_URL)")
    return _fail(f"Telegram answered: {text}")


def bot_username(delete_webhook: bool = False) -> str:
    """The bot's @username (getMe); with `delete_webhook`, also removes a webhook set on it."""
    _require_token()
    return asyncio.run(_username(delete_webhook))


async def _username(delete_webhook: bool) -> str:
    try:
        async with make_bot() as bot:
            if delete_webhook:
                await bot.delete_webhook()
            return bot.username
    except error.TelegramError as exc:
        raise _explain(exc) from None


def wait_for_chats(timeout: float = 120.0, username: str = "the bot") -> list[Chat]:
    """Long-poll getUpdates until some chat writes to the bot; each chat that wrote, in order of first message.

    The updates read are confirmed (a last getUpdates with the next offset), so
    `closebell run` does not answer them later.
    """
    _require_token()
    return asyncio.run(_wait(timeout, username))


async def _wait(timeout: float, username: str) -> list[Chat]:
    deadline = time.monotonic() + timeout  # a wait on the user, not a domain time: the monotonic clock
    offset = None
    try:
        async with make_bot() as bot:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                poll = max(1, int(min(remaining, POLL_SECONDS)))
                updates = await bot.get_updates(offset=offset, timeout=poll, read_timeout=poll + 10)
                if updates:
                    offset = updates[-1].update_id + 1
                chats = _chats(updates)
                if chats:
                    await bot.get_updates(offset=offset, timeout=0)  # confirm what was read
                    return chats
    except error.TelegramError as exc:
        raise _explain(exc) from None
    raise _fail(f"no message reached @{username.lstrip('@')} within {timeout:g} s: open Telegram, send "
                f"@{username.lstrip('@')} any message (e.g. /start) and run this again, or wait longer with "
                "--timeout 300")


def _chats(updates) -> list[Chat]:
    seen: dict[int, Chat] = {}
    for update in updates:
        chat = update.effective_chat
        if chat is None or chat.id in seen:
            continue
        name = chat.title or (f"@{chat.username}" if chat.username else "") or chat.first_name or ""
        seen[chat.id] = Chat(chat.id, chat.type, name)
    return list(seen.values())


def env_file(explicit: str | None = None) -> Path:
    """Where `--write` writes: --env-file, else ./.env if it exists, else CONFIG/.env if it exists, else ./.env."""
    if explicit:
        return Path(explicit)
    for candidate in (Path(".env"), config_dir() / ".env"):
        if candidate.is_file():
            return candidate
    return Path(".env")


def write_chat_ids(path: str | Path, ids) -> str:
    """Create or update the one TELEGRAM_CHAT_IDS line in `path`; every other line stays byte for byte.

    Ids already on the line are kept (first), new ones appended. Returns the line written.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    at = next((k for k, line in enumerate(lines) if _LINE_RE.match(line)), None)
    existing = []
    if at is not None:
        value = lines[at].split("=", 1)[1].strip().strip("'\"")
        existing = [v.strip() for v in value.split(",") if v.strip()]
    merged = existing + [str(i) for i in ids if str(i) not in existing]
    line = f"{KEY}={','.join(merged)}"
    if at is not None:
        ending = lines[at][len(lines[at].rstrip("\r\n")):] or ""
        lines[at] = line + ending
    else:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        lines.append(line + newline)
    created = not path.exists()
    path.write_text("".join(lines), encoding="utf-8", newline="")
    if created:
        os.chmod(path, 0o600)  # it will hold the bot token too
    return line
