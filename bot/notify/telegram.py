"""Telegram through python-telegram-bot (v22).

Settings (environment only): TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_IDS (comma
separated; also the allow-list for commands), TELEGRAM_BASE_URL for a
self-hosted Bot API server (tests point it at 127.0.0.1).

Messages use HTML parse mode with every rule- or data-derived string escaped.
A chart goes as a photo with the text as caption, or photo then text when the
text is longer than a caption may be. Flood limits: messages to one chat are
paced, and a RetryAfter is honoured (slept through when short, else the outbox
retries after it).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from datetime import timedelta

from bot.notify.alert import SEVERITY_ICON
from bot.notify.base import Delivery, split_text
from bot.settings import env

log = logging.getLogger(__name__)

REQUIRED_ENV = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_IDS")
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
MAX_INLINE_WAIT = 30.0  # longer RetryAfter waits are left to the outbox's schedule


def chat_ids() -> list[str]:
    return [c.strip() for c in (env.get("TELEGRAM_CHAT_IDS") or "").split(",") if c.strip()]


os.environ.setdefault("PTB_TIMEDELTA", "1")  # RetryAfter.retry_after as a timedelta, as PTB 23 will give


def make_bot():
    from telegram import Bot
    from telegram.request import HTTPXRequest
    base = env.get("TELEGRAM_BASE_URL")
    kwargs = {}
    if base:
        base = base.rstrip("/")
        kwargs = {"base_url": f"{base}/bot", "base_file_url": f"{base}/file/bot"}
    request = HTTPXRequest(connection_pool_size=4, connect_timeout=10, read_timeout=30, write_timeout=30)
    return Bot(env.get("TELEGRAM_BOT_TOKEN"), request=request, **kwargs)


def format_alert(alert) -> str:
    """HTML for one alert; every string from rules or data is escaped."""
    icon = SEVERITY_ICON.get(alert.severity, "")
    late = " · late" if alert.late else ""
    lines = [f"{icon} <b>{html.escape(alert.title)}</b>",
             f"<i>{alert.session:%a %Y-%m-%d} · {html.escape(alert.rule_id)} · {alert.severity}{late}</i>"]
    if alert.text:
        lines.append(html.escape(alert.text))
    return "\n".join(lines)


def _seconds(value) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def classify(exc) -> Delivery:
    """A python-telegram-bot exception as a Delivery: what it means and whether retrying helps."""
    from telegram import error
    text = str(exc)
    if isinstance(exc, error.InvalidToken):
        return Delivery(False, "bad token: Telegram refused TELEGRAM_BOT_TOKEN", permanent=True)
    if isinstance(exc, error.RetryAfter):
        wait = _seconds(exc.retry_after)
        return Delivery(False, f"flood limit: retry after {wait:.0f}s", retry_after=wait)
    if isinstance(exc, error.Forbidden):
        return Delivery(False, f"forbidden: {text} (was the bot blocked or removed from the chat?)", permanent=True)
    if isinstance(exc, error.BadRequest):
        if "chat not found" in text.lower():
            return Delivery(False, "unknown chat: check TELEGRAM_CHAT_IDS (the user must /start the bot first)",
                            permanent=True)
        return Delivery(False, f"bad request: {text}", permanent=True)
    if isinstance(exc, error.TimedOut):
        return Delivery(False, "timed out talking to Telegram")
    if isinstance(exc, error.NetworkError):
        return Delivery(False, f"network error: {env.redact(text)}")
    if isinstance(exc, error.TelegramError):
        return Delivery(False, f"telegram error: {env.redact(text)}")
    return Delivery(False, f"{type(exc).__name__}: {env.redact(text)}")


class Notifier:
    channel = "telegram"

    def __init__(self, settings=None):
        self.pace = settings.notify.telegram_pace_seconds if settings else 1.0

    def recipients(self) -> list[str]:
        return chat_ids()

    def send(self, recipient: str, alerts, charts, report) -> None:
        """Send each alert to chat `recipient`, calling report(i, Delivery) as soon as each is done."""
        asyncio.run(self._send_all(recipient, alerts, charts, report))

    async def _send_all(self, chat, alerts, charts, report):
        from telegram import error
        try:
            async with make_bot() as bot:
                for i, alert in enumerate(alerts):
                    if i:
                        await asyncio.sleep(self.pace)
                    report(i, await self._send_one(bot, chat, alert, charts.get(i)))
        except error.TelegramError as exc:  # initialize (getMe) failed: the same for every alert
            delivery = classify(exc)
            for i in range(len(alerts)):
                report(i, delivery)

    async def _send_one(self, bot, chat, alert, chart) -> Delivery:
        from telegram import error
        for attempt in range(3):
            try:
                await self._deliver(bot, chat, format_alert(alert), chart, "HTML")
                return Delivery(True)
            except error.RetryAfter as exc:
                wait = _seconds(exc.retry_after)
                if wait > MAX_INLINE_WAIT or attempt == 2:
                    return classify(exc)
                log.info("telegram: flood limit for chat %s, waiting %.0fs", chat, wait)
                await asyncio.sleep(wait)
            except error.BadRequest as exc:
                if "parse entities" in str(exc).lower():  # markup refused: send the plain text instead
                    try:
                        await self._deliver(bot, chat, alert.plain(), chart, None)
                        return Delivery(True)
                    except error.TelegramError as again:
                        return classify(again)
                return classify(exc)
            except error.TelegramError as exc:
                return classify(exc)
        return Delivery(False, "flood limit: gave up")

    async def _deliver(self, bot, chat, text, chart, parse_mode):
        if chart:
            if len(text) <= CAPTION_LIMIT:
                await bot.send_photo(chat, photo=chart, caption=text, parse_mode=parse_mode)
                return
            await bot.send_photo(chat, photo=chart)
            await asyncio.sleep(self.pace)
        for k, piece in enumerate(split_text(text, MESSAGE_LIMIT)):
            if k:
                await asyncio.sleep(self.pace)
            await bot.send_message(chat, piece, parse_mode=parse_mode, disable_web_page_preview=True)

