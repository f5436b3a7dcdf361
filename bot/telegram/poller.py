"""The command loop: long-polls getUpdates on a thread of its own and answers allowed chats.

It must never go deaf: every error python-telegram-bot raises (NetworkError,
TimedOut, RetryAfter, Forbidden, BadRequest, …) while polling or while
replying is logged and survived — a failed reply loses that reply only, a
failed poll backs off (exponentially, capped; RetryAfter as asked) and polls
again. Only `stop()` ends the loop.

The daemon imports this module (and with it python-telegram-bot) only when
Telegram is configured.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from telegram import error

from bot.notify.telegram import chat_ids, make_bot
from bot.telegram.buttons import answer_button
from bot.telegram.handlers import respond
from bot.telegram.reply import send_reply
from bot.telegram.tune import CHAT as tune_chat

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


class CommandPoller:
    def __init__(self, app, poll_timeout: int = 10, idle_sleep: float = 1.0, backoff: float = 1.0,
                 request_timeout: float = 30.0):
        self.app = app
        self.request_timeout = request_timeout  # a reply that takes longer is a TimedOut, survived like the rest
        self.poll_timeout = poll_timeout
        self.idle_sleep = idle_sleep
        self.backoff = backoff  # first wait after a failed poll; doubles up to MAX_BACKOFF
        self.stopping = threading.Event()
        self.polls = 0  # getUpdates calls made (tests watch the loop stay alive)
        self.thread = threading.Thread(target=self._run, name="telegram-commands", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=self.poll_timeout + 5)

    def _run(self):
        while not self.stopping.is_set():
            try:
                asyncio.run(self._loop())
            except Exception:  # even a bug here must not end command handling for good
                log.exception("telegram command loop failed; restarting it")
                self.stopping.wait(self.backoff)

    async def _sleep(self, seconds: float):
        await asyncio.to_thread(self.stopping.wait, seconds)

    async def _loop(self):
        allowed = set(chat_ids())
        offset = None
        failures = 0
        async with make_bot(self.request_timeout + self.poll_timeout) as bot:
            while not self.stopping.is_set():
                try:
                    self.polls += 1
                    updates = await bot.get_updates(offset=offset, timeout=self.poll_timeout,
                                                    allowed_updates=["message", "callback_query"])
                except error.RetryAfter as exc:
                    wait = _seconds(exc.retry_after)
                    log.warning("getUpdates: flood control, waiting %.0fs", wait)
                    await self._sleep(wait)
                    continue
                except error.TelegramError as exc:
                    failures += 1
                    wait = min(self.backoff * 2 ** (failures - 1), MAX_BACKOFF)
                    log.warning("getUpdates failed (%s: %s); polling again in %.0fs", type(exc).__name__, exc, wait)
                    await self._sleep(wait)
                    continue
                failures = 0
                if not updates:
                    await self._sleep(self.idle_sleep)
                for update in updates:
                    offset = update.update_id + 1
                    try:
                        await self._answer(bot, update, allowed)
                    except error.TelegramError as exc:  # one failed reply loses that reply, not the loop
                        log.warning("reply to update %s failed (%s: %s)", update.update_id, type(exc).__name__, exc)

    async def _answer(self, bot, update, allowed):
        chat = update.effective_chat
        if chat is None:
            return
        if str(chat.id) not in allowed:
            what = (update.effective_message.text or "")[:32] if update.effective_message else "a button"
            log.warning("ignored %r from chat %s: not in TELEGRAM_CHAT_IDS", what.split()[0] if what else "",
                        chat.id)
            return
        if update.callback_query is not None:
            await answer_button(bot, update.callback_query, self.app)
            return
        message = update.effective_message
        if message is None or not message.text:
            return
        tune_chat.set(f"telegram:{chat.id}")  # who, for /tune's audit history (copied into the thread)
        reply = await asyncio.to_thread(respond, message.text, self.app)
        await send_reply(bot, chat.id, reply)


def _seconds(value) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)
