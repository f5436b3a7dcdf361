"""The buttons under each alert: Mute 1 day, Mute 1 week, Why?.

A press arrives as a callback query whose data bot.notify.button_codec signed
(versioned, HMAC keyed from the bot token). A forged, stale or unknown one gets
a polite refusal and nothing else. Mute persists through the app exactly like
/mute and the message is edited to say until when; Why? answers with the
explanation for that rule and session, shaped for a phone (bot.telegram.why).
The chat allow-list is checked by the poller before anything here runs. Errors
follow the adapter's one policy (bot.telegram.reply.error_text), as commands
do: a mistake or refusal is the one-line answer to the press, a bug is logged
with its traceback and the press answered "something went wrong, logged".
"""

from __future__ import annotations

import asyncio
import html
import logging

from bot.clock import ET
from bot.notify.button_codec import parse_callback
from bot.telegram.reply import Reply, error_text, send_reply
from bot.telegram.tune import answer_tune_button, is_tune_button
from bot.render.phone import phone_lines

log = logging.getLogger(__name__)

REFUSED = "This button is no longer valid (the rule changed or the bot's token did). Send /help for commands."


async def answer_button(bot, query, app) -> None:
    try:
        await _answer(bot, query, app)
    except Exception as exc:  # the one error policy: a line to the press, a bug logged; the loop goes on
        await query.answer(error_text(exc, "this button")[:190])


async def _answer(bot, query, app) -> None:
    if is_tune_button(query.data):  # Apply / Cancel / Undo under a /tune preview (bot.telegram.tune)
        await answer_tune_button(bot, query, app)
        return
    rule_ids = [r.id for r in app.loaded.rules]
    action = parse_callback(query.data or "", rule_ids)
    if action is None:
        log.warning("refused a button press from chat %s: data not valid", query.message.chat.id if query.message
                    else "?")
        await query.answer(REFUSED, show_alert=False)
        return
    chat_id = query.message.chat.id if query.message else None
    if action.kind == "mute":
        until = await asyncio.to_thread(app.mute, action.rule_id, action.duration)
        note = f"🔕 {action.rule_id} muted until {until.astimezone(ET):%a %Y-%m-%d %H:%M %Z}"
        await query.answer(note)
        if query.message is not None:
            await bot.edit_message_reply_markup(chat_id, query.message.message_id, reply_markup=None)
            await bot.send_message(chat_id, html.escape(note), parse_mode="HTML",
                                   reply_to_message_id=query.message.message_id)
        return
    explanation = await asyncio.to_thread(app.explain, action.rule_id, action.session)
    await query.answer()
    if chat_id is not None:
        await send_reply(bot, chat_id, Reply("\n".join(phone_lines(explanation))))
