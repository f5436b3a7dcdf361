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


async def send_reply(bot, chat_id, reply: Reply):
    if reply.photo:
        await bot.send_photo(chat_id, photo=reply.photo, caption=html.escape(reply.text)[:1024], parse_mode="HTML")
        return
    for piece in split_text(html.escape(reply.text), 4096):
        await bot.send_message(chat_id, piece, parse_mode="HTML")
