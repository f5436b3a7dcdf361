"""/tune from the phone: a rule's parameters with what nearby values would do, a preview with Apply / Cancel.

    /tune small-cap-trap              each param: value, file or phone override, firings a year nearby
    /tune small-cap-trap lead 6       the preview (bot.app.tune) with Apply / Cancel under it
    /tune small-cap-trap reset        the file's values back

Apply changes the running bot's rule at once (the override is in the store;
the next evaluation binds it), answers with what changed and an Undo button,
and takes the buttons off the preview, which the store also marks as used, so
it can never apply twice. A preview that breaks a golden test asks a second,
explicit confirmation ("Apply anyway"). Buttons are signed like the Mute
buttons (HMAC keyed from the bot token, its own domain) and name the preview
by its id in the store; a forged one is refused, one pressed more than an
hour later says it expired. The poller checked the chat allow-list first.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import hmac
import html
import logging
import re

from bot.notify.button_codec import signing_key
from bot.render.tune import param_line, preview_lines
from bot.telegram.reply import Reply

log = logging.getLogger(__name__)

SYNTAX = "/tune RULE [NAME VALUE | reset]"
DESCRIPTION = "a rule's params, a preview of a new value with Apply / Cancel"
USAGE = f"{SYNTAX}: {DESCRIPTION}"
CHAT = contextvars.ContextVar("closebell_tune_chat", default="telegram:?")  # set by the poller per update

VERSION = "t1"
ACTIONS = {"a": "apply", "y": "confirm", "c": "cancel", "u": "undo"}
_DATA_RE = re.compile(r"^t1\|([aycu])\|(\d{1,12})\|([A-Za-z0-9_-]{12})$")
REFUSED = "This button is not valid (forged, or made before the bot's token changed); nothing changed."


def tune(args, app) -> Reply:
    if not args:
        return Reply(f"Usage: {USAGE}, e.g. /tune small-cap-trap lead 6")
    rule_id = args[0]
    who = CHAT.get()
    if len(args) == 1:
        lines = [f"{rule_id}:"] + [param_line(view) for view in app.tune_params(rule_id)]
        lines.append(f"Send /tune {rule_id} NAME VALUE for a preview (nothing changes until you press Apply).")
        return Reply("\n".join(lines))
    if len(args) == 2 and args[1].lower() == "reset":
        changes = app.tune_reset(rule_id, None, who)
        return Reply("\n".join("Reset: " + c.line() for c in changes) or f"{rule_id} runs the file's values already.")
    if len(args) != 3:
        return Reply(f"Usage: {USAGE}, e.g. /tune {rule_id} lead 6")
    preview_id, preview = app.tune_open(rule_id, args[1], args[2], who)
    text = "\n".join(preview_lines(preview)) + "\nThis preview can be applied for 1 hour."
    if preview.breaks:
        text += "\nIt breaks a golden test: Apply asks you to confirm once more."
    return Reply(text, markup=keyboard(preview_id, [("a", "⚠️ Apply" if preview.breaks else "✅ Apply"),
                                                    ("c", "✖️ Cancel")]))


# -- the buttons ------------------------------------------------------------------------------------

def _sign(code: str, preview_id: int, secret=None) -> str:
    key = signing_key(secret, b"closebell-tune|")
    mac = hmac.new(key, f"{VERSION}|{code}|{preview_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:12]


def callback_data(code: str, preview_id: int, secret=None) -> str:
    return f"{VERSION}|{code}|{preview_id}|{_sign(code, preview_id, secret)}"


def parse(data, secret=None) -> tuple[str, int] | None:
    """(action, preview id) of a genuine button's data; None for anything else."""
    match = _DATA_RE.match(data or "") if isinstance(data, str) else None
    if not match:
        return None
    code, preview_id, sig = match.group(1), int(match.group(2)), match.group(3)
    if not hmac.compare_digest(_sign(code, preview_id, secret), sig):
        return None
    return ACTIONS[code], preview_id


def is_tune_button(data) -> bool:
    return isinstance(data, str) and data.startswith(f"{VERSION}|")


def keyboard(preview_id: int, buttons, secret=None):
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup  # deliberately lazy: only with a keyboard
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=callback_data(code, preview_id, secret))
                                  for code, label in buttons]])


async def answer_tune_button(bot, query, app) -> None:
    parsed = parse(query.data)
    chat_id = query.message.chat.id if query.message else None
    if parsed is None:
        log.warning("refused a /tune button from chat %s: data not valid", chat_id)
        await query.answer(REFUSED)
        return
    action, preview_id = parsed
    # an expired or used preview raises; answer_button answers it by the adapter's one error policy
    press = await asyncio.to_thread(app.tune_press, preview_id, action, f"telegram:{chat_id}")
    await query.answer(press.text[:190])
    if query.message is None:
        return
    if press.closed:  # the preview (or confirmation) can never be pressed again
        await bot.edit_message_reply_markup(chat_id, query.message.message_id, reply_markup=None)
    markup = None
    if press.confirm:
        markup = keyboard(preview_id, [("y", "⚠️ Apply anyway"), ("c", "✖️ Cancel")])
    elif press.undo:
        markup = keyboard(preview_id, [("u", "↩️ Undo")])
    await bot.send_message(chat_id, html.escape(press.text), parse_mode="HTML", reply_markup=markup,
                           reply_to_message_id=query.message.message_id)
