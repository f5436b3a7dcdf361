"""A reply to a chat, and how it goes out: the text escaped into HTML, a photo with its caption.

Shared by the command handlers (which compute replies), the buttons (Why?)
and the poller (which sends them), so none of them imports another for it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from bot.notify.base import split_text


@dataclass
class Reply:
    text: str
    photo: bytes | None = None
    markup: object = None  # an InlineKeyboardMarkup under the (last piece of the) text, e.g. /tune's buttons


async def send_reply(bot, chat_id, reply: Reply):
    if reply.photo:
        await bot.send_photo(chat_id, photo=reply.photo, caption=html.escape(reply.text)[:1024], parse_mode="HTML")
        return
    pieces = split_text(html.escape(reply.text), 4096)
    for k, piece in enumerate(pieces):
        markup = reply.markup if k == len(pieces) - 1 else None
        await bot.send_message(chat_id, piece, parse_mode="HTML", reply_markup=markup)
