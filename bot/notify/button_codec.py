"""The inline keyboard under every Telegram alert: Mute 1 day, Mute 1 week, Why?

Telegram hands a button's `callback_data` (at most 64 bytes) back to the bot
when it is pressed. Ours is short, versioned and signed:

    v1|<action>|<session yyyymmdd>|<sig>|<rule id, cut to fit>
    e.g. v1|m1d|20240711|Xq3v9LbT|small-cap-trap

- action: `m1d` (mute 1 day), `m1w` (mute 1 week), `why` (explain the alert);
- sig: 8 characters (48 bits, base64url) of an HMAC-SHA256 over version,
  action, session and the FULL rule id, keyed by a hash of TELEGRAM_BOT_TOKEN:
  data nobody could have got from one of our buttons parses to None;
- the rule id is cut to what is left of 64 bytes (39 characters here); a cut
  id is resolved against the current rule ids by prefix, and the signature
  decides which of them (if any) the button was made for.

A callback whose version is unknown, whose signature does not match (forged,
or made before the bot token changed), or whose rule no longer exists
(stale) parses to None: the adapter answers it with a polite refusal.
Notices (the bot's own messages, `kind == "notice"`) get no buttons.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Literal

from bot.settings.env import current

VERSION = "v1"
LIMIT = 64  # bytes Telegram allows in callback_data
SIG_CHARS = 8
ACTIONS = {  # code -> (kind, mute duration, button label)
    "m1d": ("mute", timedelta(days=1), "🔕 Mute 1 day"),
    "m1w": ("mute", timedelta(days=7), "🔕 Mute 1 week"),
    "why": ("why", None, "❓ Why?"),
}
_DATA_RE = re.compile(r"^v1\|(m1d|m1w|why)\|(\d{8})\|([A-Za-z0-9_-]{8})\|([A-Za-z0-9_-]{1,64})$")


@dataclass(frozen=True)
class Action:
    """What a pressed button asks for. The adapter mutes `rule_id` until now + `duration`, or explains it."""

    kind: Literal["mute", "why"]
    rule_id: str  # the full rule id
    session: date  # the session of the alert the button was under
    duration: timedelta | None  # mute: 1 day or 7 days; why: None
    code: str  # m1d | m1w | why


def signing_key(secret: str | bytes | None, domain: bytes = b"closebell-callback|") -> bytes:
    """The HMAC key of a kind of button (`domain`), derived from `secret` (default: TELEGRAM_BOT_TOKEN)."""
    if secret is None:
        secret = current().telegram_bot_token or ""
    if isinstance(secret, str):
        secret = secret.encode()
    return hashlib.sha256(domain + secret).digest()


def _sign(code: str, session: str, rule_id: str, secret) -> str:
    mac = hmac.new(signing_key(secret), f"{VERSION}|{code}|{session}|{rule_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:SIG_CHARS]


def callback_data(code: str, rule_id: str, session: date, secret=None) -> str:
    """The callback data for one button (at most 64 bytes)."""
    day = f"{session:%Y%m%d}"
    head = f"{VERSION}|{code}|{day}|{_sign(code, day, rule_id, secret)}|"
    return head + rule_id[:LIMIT - len(head)]


def keyboard(alert, secret=None):
    """InlineKeyboardMarkup with Mute 1 day / Mute 1 week / Why? for a rule's alert; None for the bot's own
    messages (notices, digests) and resolved notices, which nothing can be muted or explained for."""
    if alert.kind != "alert":
        return None
    # deliberately lazy: python-telegram-bot only when a Telegram message is built (this module is light)
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(label, callback_data=callback_data(code, alert.rule_id, alert.session, secret))
        for code, (_kind, _duration, label) in ACTIONS.items()]])


def group_keyboard(alerts, secret=None, rows: int = 10):
    """For a grouped message: one row per alert (most severe first, at most `rows`), labelled with its rule."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup  # deliberately lazy: as in keyboard()
    lines = []
    for alert in [a for a in alerts if a.kind == "alert"][:rows]:
        lines.append([
            InlineKeyboardButton(f"🔕 {alert.rule_id} 1d",
                                 callback_data=callback_data("m1d", alert.rule_id, alert.session, secret)),
            InlineKeyboardButton("1 week", callback_data=callback_data("m1w", alert.rule_id, alert.session, secret)),
            InlineKeyboardButton("Why?", callback_data=callback_data("why", alert.rule_id, alert.session, secret)),
        ])
    return InlineKeyboardMarkup(lines) if lines else None


def parse_callback(data, rule_ids: Iterable[str] | None = None, secret=None) -> Action | None:
    """The Action a button's data asks for, or None when it is malformed, forged or stale.

    `rule_ids`: the rules that exist now. A button for a rule that is gone is
    stale (None), and a cut rule id can only be resolved against them; without
    `rule_ids` only uncut ids parse.
    """
    if not isinstance(data, str) or len(data.encode()) > LIMIT:
        return None
    match = _DATA_RE.match(data)
    if not match:
        return None
    code, day, sig, rule_part = match.groups()
    try:
        session = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        return None
    cut = len(data) >= LIMIT  # the id filled the space left: it may have been cut
    if rule_ids is None:
        candidates = [rule_part]
    else:
        known = list(rule_ids)
        candidates = [r for r in known if r.startswith(rule_part)] if cut else \
            [r for r in known if r == rule_part]
    for rule_id in candidates:
        if hmac.compare_digest(_sign(code, day, rule_id, secret), sig):
            kind, duration, _label = ACTIONS[code]
            return Action(kind=kind, rule_id=rule_id, session=session, duration=duration, code=code)
    return None
