"""Telegram commands, answered only in allow-listed chats (TELEGRAM_CHAT_IDS).

A command from any other chat gets no answer and no data; the attempt is
logged. `respond` turns one command into a reply and is the part worth testing;
`CommandPoller` is the thin loop around it (long-polling getUpdates).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.data.calendar import ET

log = logging.getLogger(__name__)

HELP = """Closebell commands:
/status: last run, next run, data freshness, pending deliveries
/rules: rules with their last firing
/check: evaluate the latest session now
/last [n]: the n most recent alerts (default 5)
/chart SERIES [SERIES2] [months]: a chart, e.g. /chart IWM DGS10 6
/mute RULE DURATION: silence a rule, e.g. /mute small-cap-trap 3d (m, h, d, w)
/unmute RULE
/help"""

DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass
class Reply:
    text: str
    photo: bytes | None = None


def respond(text: str, store, loaded, now: datetime | None = None) -> Reply:
    """The reply to one command message (already known to come from an allowed chat)."""
    now = now or datetime.now(ET)
    words = text.strip().split()
    if not words or not words[0].startswith("/"):
        return Reply("Send /help for the commands.")
    command = words[0][1:].split("@")[0].lower()
    args = words[1:]
    handler = HANDLERS.get(command)
    if handler is None:
        from bot.settings.yamlfile import did_you_mean
        return Reply(f"Unknown command /{command}{did_you_mean(command, HANDLERS)}. Send /help.")
    try:
        return handler(args, store, loaded, now)
    except Exception as exc:  # a command must never take the bot down
        log.exception("command /%s failed", command)
        return Reply(f"/{command} failed: {exc}")


def _status(args, store, loaded, now):
    from bot.status import status_lines
    return Reply("\n".join(status_lines(store, loaded, now)))


def _prepared(store, loaded):
    from bot.analysis import prepare
    return prepare(loaded.rules, loaded.series, store=store)


def _rules(args, store, loaded, now):
    prepared = _prepared(store, loaded)
    mutes = store.mutes(now)
    lines = []
    for rule in loaded.rules:
        fires = prepared.evaluation.fire_dates(rule.id)
        last = f"{fires[-1]:%Y-%m-%d}" if len(fires) else "never"
        muted = f" (muted until {mutes[rule.id].astimezone(ET):%m-%d %H:%M})" if rule.id in mutes else ""
        lines.append(f"{rule.id} [{rule.severity}]{muted}\n  {rule.title}; last fired {last}")
    return Reply("\n".join(lines) or "No rules.")


def _check(args, store, loaded, now):
    from bot.analysis import latest_session_with_data
    prepared = _prepared(store, loaded)
    session = latest_session_with_data(prepared, loaded.rules)
    ev = prepared.evaluation
    i = ev.frame.index_of(session)
    fired = ev.fired_on(i)
    lines = [f"Session {session:%a %Y-%m-%d}: {len(fired)} of {len(loaded.rules)} rule(s) fire."]
    for rule in fired:
        lines.append(f"• {rule.id}: {ev.message(rule, i)}")
    for rule in loaded.rules:
        gaps = ev.gaps(rule, i)
        if gaps:
            lines.append(f"({rule.id}: {'; '.join(gaps)})")
    return Reply("\n".join(lines))


def _last(args, store, loaded, now):
    from bot.notify.alert import Alert
    count = int(args[0]) if args and args[0].isdigit() else 5
    seen, lines = set(), []
    for row in store.outbox_rows(["sent"], limit=500):
        key = (row.rule_id, row.session)
        if row.rule_id.startswith("notice:") or key in seen:
            continue
        seen.add(key)
        alert = Alert.from_json(row.payload)
        lines.append(f"{alert.session:%Y-%m-%d} {alert.rule_id}: {alert.text}")
        if len(lines) >= count:
            break
    return Reply("\n".join(lines) or "No alerts sent yet.")


def _chart(args, store, loaded, now):
    import pandas as pd
    from bot.data import calendar, load
    from bot.engine import frame as frames
    from bot.notify.charts import series_chart
    from bot.settings.yamlfile import did_you_mean
    months = 6
    if args and args[-1].isdigit():
        months = max(1, min(int(args.pop()), 120))
    names = [a.upper() for a in args[:2]]
    if not names:
        return Reply("Usage: /chart SERIES [SERIES2] [months], e.g. /chart IWM DGS10 6")
    for name in names:
        if name not in loaded.series:
            return Reply(f"Unknown series {name}{did_you_mean(name, loaded.series)}. "
                         f"Series: {', '.join(loaded.series)}")
    data = load.from_store(store, names)
    end = max(d.index.max() for d in data.values())
    start = end - pd.DateOffset(months=months)
    sessions = calendar.sessions(start, end)
    frame = frames.build(data, {n: loaded.series[n].frequency for n in names}, sessions)
    units = {n: loaded.series[n].units for n in names}
    png = series_chart(frame, names, units, [], f"{' vs '.join(names)}, {months} months")
    return Reply(f"{' vs '.join(names)}, last {months} months to {end:%Y-%m-%d}", photo=png)


def _mute(args, store, loaded, now):
    if len(args) != 2:
        return Reply("Usage: /mute RULE DURATION, e.g. /mute small-cap-trap 3d (m, h, d or w)")
    rule_id, duration = args
    problem = _unknown_rule(rule_id, loaded)
    if problem:
        return problem
    match = DURATION.match(duration.lower())
    if not match:
        return Reply(f"'{duration}' is not a duration: write a number and m, h, d or w, e.g. 3d")
    until = now + timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    store.mute(rule_id, until.astimezone(ET))
    return Reply(f"Muted {rule_id} until {until.astimezone(ET):%a %Y-%m-%d %H:%M %Z}.")


def _unmute(args, store, loaded, now):
    if len(args) != 1:
        return Reply("Usage: /unmute RULE")
    problem = _unknown_rule(args[0], loaded)
    if problem:
        return problem
    return Reply(f"Unmuted {args[0]}." if store.unmute(args[0]) else f"{args[0]} was not muted.")


def _unknown_rule(rule_id, loaded):
    from bot.settings.yamlfile import did_you_mean
    ids = [r.id for r in loaded.rules]
    if rule_id not in ids:
        return Reply(f"No rule {rule_id}{did_you_mean(rule_id, ids)}. Rules: {', '.join(ids)}")
    return None


def _help(args, store, loaded, now):
    return Reply(HELP)


HANDLERS = {"status": _status, "rules": _rules, "check": _check, "last": _last, "chart": _chart,
            "mute": _mute, "unmute": _unmute, "help": _help, "start": _help}


class CommandPoller:
    """Long-polls getUpdates on a thread of its own and answers allowed chats."""

    def __init__(self, runtime, daemon=None, poll_timeout: int = 10, idle_sleep: float = 1.0):
        self.runtime = runtime
        self.poll_timeout = poll_timeout
        self.idle_sleep = idle_sleep
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="telegram-commands", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=self.poll_timeout + 5)

    def _run(self):
        try:
            asyncio.run(self._loop())
        except Exception:
            log.exception("telegram command loop stopped")

    async def _loop(self):
        from telegram import error
        from bot.notify.telegram import chat_ids, make_bot
        allowed = set(chat_ids())
        offset = None
        async with make_bot() as bot:
            while not self.stopping.is_set():
                try:
                    updates = await bot.get_updates(offset=offset, timeout=self.poll_timeout,
                                                    allowed_updates=["message"])
                except error.TelegramError as exc:
                    log.warning("getUpdates failed: %s", exc)
                    await asyncio.sleep(5)
                    continue
                if not updates:
                    await asyncio.sleep(self.idle_sleep)
                for update in updates:
                    offset = update.update_id + 1
                    await self._answer(bot, update, allowed)

    async def _answer(self, bot, update, allowed):
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or not message.text:
            return
        if str(chat.id) not in allowed:
            log.warning("ignored %r from chat %s: not in TELEGRAM_CHAT_IDS", message.text.split()[0][:32], chat.id)
            return
        loaded = self.runtime.config.get()
        reply = await asyncio.to_thread(respond, message.text, self.runtime.store, loaded)
        from bot.notify.base import split_text
        if reply.photo:
            await bot.send_photo(chat.id, photo=reply.photo, caption=html.escape(reply.text)[:1024],
                                 parse_mode="HTML")
            return
        for piece in split_text(html.escape(reply.text), 4096):
            await bot.send_message(chat.id, piece, parse_mode="HTML")
