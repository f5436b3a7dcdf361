"""The command loop: long-polls getUpdates on a thread of its own and answers allowed chats.

It must never go deaf: every error python-telegram-bot raises (NetworkError,
TimedOut, RetryAfter, Forbidden, BadRequest, …) while polling or while
replying is logged and survived — a failed reply loses that reply only, a
failed poll backs off (exponentially, capped; RetryAfter as asked) and polls
again. Only `stop()` ends the loop.

Strangers and odd updates cost nothing: an update from a chat off the
allow-list is dropped before anything reads its text; an edited message, a
channel post, a sticker, a button with no data is dropped too; and whatever
handling one update raises (a bug included) is logged and ends with that
update. The offset lives on the poller and moves past each update before it is
handled, so even a restart of the loop never reads a handled update again and
one bad update never blocks the ones after it.

At start (getMe) the bot learns its username, which tells `/mute@this_bot`
from `/mute@other_bot` in a group, and registers the command menu
(setMyCommands) from the handler table, only when Telegram's copy differs.

The daemon imports this module (and with it python-telegram-bot) only when
Telegram is configured.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings

from telegram import BotCommand, Update, error
from telegram.warnings import PTBUserWarning

from bot.notify.telegram import chat_ids, make_bot
from bot.telegram.buttons import answer_button
from bot.telegram.handlers import menu, respond
from bot.telegram.reply import send_reply
from bot.telegram.tune import CHAT as tune_chat

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
ALLOWED_UPDATES = ["message", "callback_query"]  # what Telegram sends us; anything else is dropped here too


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
        self.offset: int | None = None  # the next update to read; kept across restarts of the loop
        self.username: str | None = None  # this bot's, from getMe: commands @addressed to others are not ours
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
        failures = 0
        async with make_bot(self.request_timeout + self.poll_timeout) as bot:
            self.username = bot.username
            await self._register_menu(bot)
            while not self.stopping.is_set():
                try:
                    self.polls += 1
                    updates = await bot.get_updates(offset=self.offset, timeout=self.poll_timeout,
                                                    allowed_updates=ALLOWED_UPDATES)
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
                except Exception:  # an update python-telegram-bot cannot read: the batch raw, that one dropped
                    before = self.offset
                    updates = await self._salvage(bot)
                    if self.offset == before and not updates:  # nothing to skip past: back off, as above
                        failures += 1
                        await self._sleep(min(self.backoff * 2 ** (failures - 1), MAX_BACKOFF))
                        continue
                failures = 0
                if not updates:
                    await self._sleep(self.idle_sleep)
                for update in updates:
                    self.offset = max(self.offset or 0, update.update_id + 1)  # past it before it is handled
                    try:
                        await self._answer(bot, update, allowed)
                    except error.TelegramError as exc:  # one failed reply loses that reply, not the loop
                        log.warning("reply to update %s failed (%s: %s)", update.update_id, type(exc).__name__, exc)
                    except Exception:  # a bug while handling one update ends with that update
                        log.exception("update %s could not be handled; dropped", update.update_id)

    async def _salvage(self, bot) -> list:
        """The batch getUpdates could not parse, read raw and parsed one update at a time: each that
        cannot be read is logged by its id and skipped, so it never blocks the updates after it."""
        fields = {"timeout": 0, "allowed_updates": ALLOWED_UPDATES}
        if self.offset is not None:
            fields["offset"] = self.offset
        with warnings.catch_warnings():  # PTB asks for get_updates, the very call that failed to parse
            warnings.simplefilter("ignore", PTBUserWarning)
            raw = await bot.do_api_request("getUpdates", api_kwargs=fields)
        updates = []
        for item in raw if isinstance(raw, list) else []:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            try:
                updates.append(Update.de_json(item, bot))
            except Exception as exc:
                log.warning("update %s could not be read (%s); dropped", update_id, type(exc).__name__)
                if isinstance(update_id, int):
                    self.offset = max(self.offset or 0, update_id + 1)
        return updates

    async def _register_menu(self, bot):
        """Telegram's "/" menu from the handler table: setMyCommands only when getMyCommands differs."""
        wanted = menu()
        try:
            current = [(c.command, c.description) for c in await bot.get_my_commands()]
            if current != wanted:
                await bot.set_my_commands([BotCommand(name, text) for name, text in wanted])
                log.info("telegram: registered %d commands for the menu", len(wanted))
        except Exception as exc:  # the menu is a convenience: commands work without it, whatever went wrong
            log.warning("telegram: could not register the command menu (%s: %s)", type(exc).__name__, exc)

    async def _answer(self, bot, update, allowed):
        """Answer one update: a command from an allowed chat, or a button press under a message there."""
        chat = update.effective_chat
        if chat is None:
            return
        if str(chat.id) not in allowed:  # of a stranger's update, only its first word is read, for the log
            log.warning("ignored %s from chat %s: not in TELEGRAM_CHAT_IDS", _what(update), chat.id)
            return
        if update.callback_query is not None:
            await answer_button(bot, update.callback_query, self.app)
            return
        message = update.message  # not edited messages nor channel posts: only what was sent as a command
        if message is None or not isinstance(message.text, str) or not message.text.strip():
            return
        tune_chat.set(f"telegram:{chat.id}")  # who, for /tune's audit history (copied into the thread)
        reply = await asyncio.to_thread(respond, message.text, self.app, self.username)
        if reply is not None:
            await send_reply(bot, chat.id, reply)


def _what(update) -> str:
    """A stranger's update in a few safe characters for the log: its first word (repr), or its kind."""
    if update.callback_query is not None:
        return "a button"
    message = update.effective_message
    text = message.text if message is not None else None
    words = text[:64].split(maxsplit=1) if isinstance(text, str) else []
    return repr(words[0][:32]) if words else "a message without text"


def _seconds(value) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)
