"""A reply to a chat, how it goes out, and what a chat sees when something fails.

Shared by the command handlers (which compute replies), the buttons (Why?,
Mute, /tune's Apply) and the poller (which sends them), so none of them
imports another for it. The text is escaped into HTML and split into pieces
Telegram accepts (bot.notify.telegram.split_html: never inside an entity or
a tag); a photo's caption is the first piece of at most 1024 characters.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass

from bot.errors import ClosebellError, UsageError
from bot.notify.telegram import CAPTION_LIMIT, MESSAGE_LIMIT, split_html

log = logging.getLogger(__name__)

BUG = "something went wrong, logged"


@dataclass
class Reply:
    text: str
    photo: bytes | None = None
    markup: object = None  # an InlineKeyboardMarkup under the (last piece of the) text, e.g. /tune's buttons


def error_text(exc: Exception, what: str) -> str:
    """The one error policy of the chat adapter, for commands and buttons alike.

    A user's mistake (UsageError) is answered with its one line, which says
    what to write instead; a known failure (the store, a source) with what
    could not be done; anything else is a bug: logged with its traceback for
    whoever runs the bot, and the chat learns only that it is logged. The
    caller answers and carries on, so one bad update never stops the loop.
    """
    if isinstance(exc, UsageError):
        return str(exc)
    if isinstance(exc, ClosebellError):
        return f"{what} could not answer: {exc}"
    log.error("%s failed", what, exc_info=exc)
    return f"{what}: {BUG}."


async def send_reply(bot, chat_id, reply: Reply):
    text = html.escape(reply.text)
    if reply.photo:
        pieces = split_html(text, MESSAGE_LIMIT, first_limit=CAPTION_LIMIT)
        await bot.send_photo(chat_id, photo=reply.photo, caption=pieces[0] or None, parse_mode="HTML",
                             reply_markup=reply.markup if len(pieces) == 1 else None)
        pieces = pieces[1:]
    else:
        pieces = split_html(text, MESSAGE_LIMIT)
    for k, piece in enumerate(pieces):
        markup = reply.markup if k == len(pieces) - 1 else None
        await bot.send_message(chat_id, piece, parse_mode="HTML", reply_markup=markup)
