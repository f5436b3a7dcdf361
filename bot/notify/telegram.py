"""Telegram through python-telegram-bot (v22).

Settings (environment only, handed in as bot.settings.env.Environment): TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_IDS (comma
separated; also the allow-list for commands), TELEGRAM_BASE_URL for a
self-hosted Bot API server (tests point it at 127.0.0.1).

Messages use HTML parse mode with every rule- or data-derived string escaped.
Each alert carries the Mute 1 day / Mute 1 week / Why? keyboard (bot.notify.button_codec);
`info` alerts and quiet hours go silently (bot.notify.quiet); many alerts at once
become one grouped message (`notify.grouping`, `notify.group_above`).
A chart goes as a photo with the text as caption, or photo then text when the
text is longer than a caption may be. Flood limits: messages to one chat are
paced, and a RetryAfter is honoured (slept through when short, else the outbox
retries after it).

python-telegram-bot itself (~0.3 s and httpx) is imported inside the functions
that talk to Telegram, deliberately: routing imports this module to read
REQUIRED_ENV and the chat ids whenever it asks where an alert goes, and a bot
without Telegram (or an idle daemon between sends) should not carry it.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from datetime import timedelta

from bot.clock import SYSTEM
from bot.notify import button_codec, quiet
from bot.notify.alert import SEVERITY_ICON
from bot.notify.base import Delivery, grouped_units, split_text
from bot.settings.env import Environment, current, redact

log = logging.getLogger(__name__)

REQUIRED_ENV = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_IDS")
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
MAX_INLINE_WAIT = 30.0  # longer RetryAfter waits are left to the outbox's schedule


def chat_ids(environment: Environment | None = None) -> list[str]:
    return list((environment if environment is not None else current()).telegram_chat_ids)


DEFAULT_SERVER = "https://api.telegram.org"


def server_url(base: str | None) -> str:
    """The Bot API server of TELEGRAM_BASE_URL, written with or without its `/bot` ending (both are
    common: python-telegram-bot's base_url has it, a server's address does not): never `/bot/bot`."""
    base = (base or DEFAULT_SERVER).strip().rstrip("/")
    return base[:-4].rstrip("/") if base.endswith("/bot") else base


def api_url(base: str | None) -> str:
    """Where the API methods are: the server plus `/bot` (the token follows, and is never shown)."""
    return f"{server_url(base)}/bot"


def make_bot(read_timeout: float = 30.0, environment: Environment | None = None):
    from telegram import Bot  # deliberately lazy: see the module docstring
    from telegram.request import HTTPXRequest  # deliberately lazy: see the module docstring
    environment = environment if environment is not None else current()
    base = environment.telegram_base_url
    kwargs = {}
    if base:
        kwargs = {"base_url": api_url(base), "base_file_url": f"{server_url(base)}/file/bot"}
    request = HTTPXRequest(connection_pool_size=4, connect_timeout=10, read_timeout=read_timeout,
                           write_timeout=read_timeout)
    return Bot(environment.telegram_bot_token, request=request, **kwargs)


# -- splitting HTML into messages Telegram accepts ------------------------------------------------
#
# Telegram refuses a whole message ("can't parse entities") when one piece of it
# is cut inside `&amp;` or a tag, or leaves a tag open. So a long text is cut
# between atoms only: a tag, an entity, a line break, a space, or a run of at
# most 64 other characters; the tags open at the cut are closed at the end of
# the piece and opened again at the start of the next. Lengths are counted on
# the HTML in UTF-16 units, which is never less than what Telegram counts
# (characters after the entities are parsed), so every piece fits.

_ATOM = re.compile(r"<[^<>]*>|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{1,10});|\n|[^\S\n]|[^<&\s]{1,64}|[<&]")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")


def _units(atom: str) -> int:
    return len(atom) if atom.isascii() else len(atom.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = MESSAGE_LIMIT, first_limit: int | None = None) -> list[str]:
    """`text` (Telegram HTML) cut into pieces of at most `limit` (the first: `first_limit`, e.g. a caption's
    1024), each valid HTML on its own: cut at a line break, else a space, else between atoms (never
    inside an entity or a tag), tags closed and reopened across the cut."""
    first = first_limit or limit
    if _units(text) <= first:
        return [text]
    atoms = _ATOM.findall(text)
    pieces: list[str] = []
    stack: list[tuple[str, str]] = []  # (name, opening tag) of the tags open where the next piece starts
    i = 0
    while i < len(atoms):
        cap = first if not pieces else limit
        out = [tag for _, tag in stack]
        n = sum(_units(tag) for tag in out)
        here = list(stack)
        closers = sum(len(name) + 3 for name, _ in here)
        line = space = None  # the last line break / space seen: (atom index after it, len(out) before it, n, stack)
        j = i
        while j < len(atoms):
            atom = atoms[j]
            tag = _TAG.match(atom) if atom[0] == "<" and atom[-1] == ">" else None
            after, extra = here, 0
            if tag and tag.group(1):
                if here and here[-1][0] == tag.group(2).lower():
                    after, extra = here[:-1], -(len(here[-1][0]) + 3)
            elif tag:
                after, extra = here + [(tag.group(2).lower(), atom)], len(tag.group(2)) + 3
            size = _units(atom)
            if n + size + closers + extra > cap and j > i:
                break
            if atom == "\n":
                line = (j + 1, len(out), n, list(here))
            elif atom.isspace():
                space = (j + 1, len(out), n, list(here))
            out.append(atom)
            n, here, closers = n + size, after, closers + extra
            j += 1
        else:
            _keep(pieces, "".join(out) + "".join(f"</{name}>" for name, _ in reversed(here)))
            break
        cut = next((c for c in (line, space) if c and c[2] >= cap // 2), None)
        if cut is None:  # no break point in the second half: cut between atoms where the piece is full
            resume, keep, here = j, len(out), here
        else:  # the line break or space itself is dropped; the piece ends just before it
            resume, keep, _n, here = cut
        _keep(pieces, "".join(out[:keep]) + "".join(f"</{name}>" for name, _ in reversed(here)))
        stack, i = here, resume
    return pieces


def _keep(pieces: list[str], piece: str) -> None:
    """Append `piece` unless it shows nothing (only tags and spaces): Telegram refuses an empty message."""
    if re.sub(r"<[^<>]*>", "", piece).strip():
        pieces.append(piece)


def format_alert(alert) -> str:
    """HTML for one alert; every string from rules or data is escaped."""
    icon = SEVERITY_ICON.get(alert.severity, "")
    late = " · late" if alert.late else ""
    lines = [f"{icon} <b>{html.escape(alert.title)}</b>",
             f"<i>{alert.session:%a %Y-%m-%d} · {html.escape(alert.rule_id)} · {alert.severity}{late}</i>"]
    if alert.text:
        lines.append(html.escape(alert.text))
    return "\n".join(lines)


def _when(alerts) -> str:
    sessions = sorted({a.session for a in alerts})
    if len(sessions) == 1:
        return f"{sessions[0]:%a %Y-%m-%d}"
    return f"{sessions[0]:%Y-%m-%d} to {sessions[-1]:%Y-%m-%d}"


def format_group(alerts) -> str:
    """HTML for a grouped message: a heading, then one line per alert in the order given (most severe first)."""
    several = len({a.session for a in alerts}) > 1
    icon = SEVERITY_ICON.get(alerts[0].severity, "") if alerts else ""
    lines = [f"{icon} <b>{len(alerts)} alerts</b> · <i>{_when(alerts)}</i>"]
    for alert in alerts:
        day = f"{alert.session:%m-%d} " if several else ""
        late = " · late" if alert.late else ""
        lines.append(f"{SEVERITY_ICON.get(alert.severity, '')} {day}<b>{html.escape(alert.title or alert.rule_id)}</b>"
                     f" · {html.escape(alert.rule_id)}{late}")
    return "\n".join(lines)


def plain_group(alerts) -> str:
    lines = [f"{len(alerts)} alerts, {_when(alerts)}"]
    lines += [f"[{a.severity}] {a.session:%m-%d} {a.title or a.rule_id} ({a.rule_id})" for a in alerts]
    return "\n".join(lines)


def _seconds(value) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _where() -> str:
    """The API address tried, for an error: the token stands as <token>, never itself."""
    return f"{api_url(current().telegram_base_url)}<token>/"


def _cause(exc) -> str:
    """What the network said, without python-telegram-bot's `httpx.ConnectError: ` prefix; redacted."""
    text = redact(str(exc))
    return text.split(": ", 1)[1] if text.startswith("httpx.") and ": " in text else text


_SERVER_SIDE = re.compile(r"\b(Bad Gateway|Service Unavailable|Gateway Time-?out|Internal Server Error|5\d\d)\b")


def classify(exc) -> Delivery:
    """A python-telegram-bot exception as a Delivery: what it means and whether retrying helps."""
    from telegram import error  # deliberately lazy: see the module docstring
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
        return Delivery(False, f"timed out talking to Telegram at {_where()}")
    if isinstance(exc, error.NetworkError) and _SERVER_SIDE.search(text):
        # python-telegram-bot raises a NetworkError for a 5xx too: the server was reached and is in trouble,
        # so the user's network is not the thing to check. Retried like an outage.
        return Delivery(False, f"Telegram's server answered {_cause(exc)} at {_where()}: an outage on its side; "
                               "retried")
    if isinstance(exc, error.NetworkError):
        return Delivery(False, f"network error: cannot reach {_where()} ({_cause(exc)}); is the network up, "
                               f"and TELEGRAM_BASE_URL right if set?")
    if isinstance(exc, error.TelegramError):
        return Delivery(False, f"telegram error: {redact(text)}")
    return Delivery(False, f"{type(exc).__name__}: {redact(text)}")


class Notifier:
    """Sends to one chat: each alert as its own message, or one grouped message when many arrive at once.

    `info` alerts, and anything but `critical` inside quiet hours, go with
    `disable_notification` (see bot.notify.quiet), decided with `clock`'s now.
    Every alert but a notice carries the Mute 1 day / Mute 1 week / Why? keyboard.
    """

    channel = "telegram"

    def __init__(self, settings=None, clock=None, environment: Environment | None = None):
        self.settings = settings
        self.env = environment if environment is not None else current()
        self.clock = clock or SYSTEM
        self.pace = settings.notify.telegram_pace_seconds if settings else 1.0

    def recipients(self) -> list[str]:
        return chat_ids(self.env)

    def units(self, alerts) -> list[list[int]]:
        """Each alert its own message, or (grouping on, more than group_above alerts) one grouped message."""
        return grouped_units(alerts, self.settings)

    def send(self, recipient: str, alerts, charts, report) -> None:
        """Send `alerts` to chat `recipient`, calling report(i, Delivery) as soon as each is done."""
        asyncio.run(self._send_all(recipient, alerts, charts, report))

    async def _send_all(self, chat, alerts, charts, report):
        from telegram import error  # deliberately lazy: see the module docstring
        try:
            async with make_bot(environment=self.env) as bot:
                for k, unit in enumerate(self.units(alerts)):
                    if k:
                        await asyncio.sleep(self.pace)
                    delivery = await self._send_unit(bot, chat, [alerts[i] for i in unit],
                                                     [charts.get(i) for i in unit])
                    for i in unit:
                        report(i, delivery)
        except error.TelegramError as exc:  # initialize (getMe) failed: the same for every alert
            delivery = classify(exc)
            for i in range(len(alerts)):
                report(i, delivery)

    def silent(self, alerts) -> bool:
        now = self.clock.now()
        return all(quiet.silent(a, now, self.settings) for a in alerts)

    async def _send_unit(self, bot, chat, alerts, charts) -> Delivery:
        if len(alerts) == 1:
            alert, chart = alerts[0], charts[0]
            html_text, plain, markup = (format_alert(alert), alert.plain(),
                                        button_codec.keyboard(alert, secret=self.env.telegram_bot_token or ""))
        else:
            order = sorted(range(len(alerts)), key=lambda i: -alerts[i].rank)
            ranked = [alerts[i] for i in order]
            chart = next((charts[i] for i in order if charts[i]), None)
            html_text, plain, markup = (format_group(ranked), plain_group(ranked),
                                        button_codec.group_keyboard(ranked, secret=self.env.telegram_bot_token or ""))
        return await self._send_one(bot, chat, html_text, plain, chart, self.silent(alerts), markup)

    async def _send_one(self, bot, chat, html_text, plain, chart, silent, markup) -> Delivery:
        from telegram import error  # deliberately lazy: see the module docstring
        for attempt in range(3):
            try:
                await self._deliver(bot, chat, html_text, chart, "HTML", silent, markup)
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
                        await self._deliver(bot, chat, plain, chart, None, silent, markup)
                        return Delivery(True)
                    except error.TelegramError as again:
                        return classify(again)
                return classify(exc)
            except error.TelegramError as exc:
                return classify(exc)
        return Delivery(False, "flood limit: gave up")

    async def _deliver(self, bot, chat, text, chart, parse_mode, silent, markup):
        """Photo with the text as caption, or photo then text; the keyboard goes on the message with the text."""
        if chart:
            if len(text) <= CAPTION_LIMIT:
                await bot.send_photo(chat, photo=chart, caption=text, parse_mode=parse_mode,
                                     disable_notification=silent, reply_markup=markup)
                return
            await bot.send_photo(chat, photo=chart, disable_notification=silent)
            await asyncio.sleep(self.pace)
        pieces = split_html(text, MESSAGE_LIMIT) if parse_mode == "HTML" else split_text(text, MESSAGE_LIMIT)
        for k, piece in enumerate(pieces):
            if k:
                await asyncio.sleep(self.pace)
            await bot.send_message(chat, piece, parse_mode=parse_mode, disable_web_page_preview=True,
                                   disable_notification=silent,
                                   reply_markup=markup if k == len(pieces) - 1 else None)
