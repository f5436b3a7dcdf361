"""One chat command -> one app call -> a plain-text reply (the poller escapes it into HTML).

Every reply is computed by the application core, the same call the CLI makes:
`/check` and `closebell check` share one `CheckResult`. COMMANDS is the one
table of what the bot understands: each entry carries its handler, usage line,
one-line description and whether Telegram's "/" menu shows it; `/help` and the
menu the poller registers with setMyCommands are generated from it, so neither
can drift from what is answered. Errors follow the adapter's one policy
(bot.telegram.reply.error_text): a user's mistake is answered with one line,
a bug is logged and the chat told so, never a traceback in the chat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from bot.clock import ET
from bot.errors import UsageError
from bot.render.alerts import last_alerts_lines, rules_lines
from bot.render.check import check_phone_lines
from bot.render.phone import phone_lines
from bot.render.status import status_lines
from bot.settings.paths import out_of_range
from bot.suggest import did_you_mean
from bot.telegram.reply import Reply, error_text
from bot.telegram.tune import DESCRIPTION as TUNE_DESCRIPTION, SYNTAX as TUNE_SYNTAX, tune as _tune


DURATION = re.compile(r"^(\d{1,6})\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MUTE_USAGE = "Usage: /mute RULE DURATION, e.g. /mute small-cap-trap 3d (m, h, d or w; at most 366 days)"
WHY_USAGE = "Usage: /why RULE [YYYY-MM-DD], e.g. /why small-cap-trap 2024-07-16"


@dataclass(frozen=True)
class Command:
    """One chat command: what answers it and how it is shown in /help and Telegram's "/" menu."""

    name: str  # what follows the slash: lower-case letters, digits and _ (Telegram's rule for the menu)
    handler: Callable  # (args, app) -> Reply
    usage: str  # "/why RULE [YYYY-MM-DD]": the first half of its /help line
    description: str  # one line: the second half of its /help line and its text in the "/" menu
    menu: bool = True  # False: answered, but neither in the menu nor in /help (e.g. /start)


def parse_duration(text: str) -> timedelta:
    """'3d' -> 3 days; anything else (or beyond a year) is a UsageError with the usage line."""
    match = DURATION.match(text.strip().lower())
    if not match:
        raise UsageError(f"'{text[:20]}' is not a duration: write a number and m, h, d or w, e.g. 3d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def addressee(word: str) -> tuple[str, str | None]:
    """'/mute@some_bot' -> ('mute', 'some_bot'); '/mute' -> ('mute', None)."""
    name, _, to = word[1:].partition("@")
    return name.lower(), (to or None)


def respond(text: str, app, username: str | None = None) -> Reply | None:
    """The reply to one command message (already known to come from an allowed chat).

    None when the message is not for this bot: a command addressed to another
    bot in a group (`/mute@other_bot`) is left to that bot. `username` is this
    bot's, from getMe; `/mute@<username>` is answered like `/mute`.
    """
    words = (text or "").split()
    if not words or not words[0].startswith("/"):
        return Reply("Send /help for the commands.")
    command, to = addressee(words[0])
    if to is not None and (username is None or to.lower() != username.lower()):
        return None
    args = words[1:]
    entry = COMMANDS.get(command)
    if entry is None:
        return Reply(f"Unknown command /{command[:32]}{did_you_mean(command, COMMANDS)}. Send /help.")
    try:
        return entry.handler(args, app)
    except Exception as exc:  # a command must never take the bot down
        return Reply(error_text(exc, f"/{command}"))


def _status(args, app):
    return Reply("\n".join(status_lines(app.status())))


def _rules(args, app):
    return Reply("\n".join(rules_lines(app.rules_overview())))


def _check(args, app):
    return Reply("\n".join(check_phone_lines(app.check())))


def _why(args, app):
    if not 1 <= len(args) <= 2:
        return Reply(WHY_USAGE)
    day = None
    if len(args) == 2:
        try:
            day = date.fromisoformat(args[1])
        except ValueError:
            return Reply(f"'{args[1][:20]}' is not a date; write YYYY-MM-DD, e.g. /why {args[0]} 2024-07-16")
        why = out_of_range(day)  # pandas cannot hold 0001-01-01: refused here, as the CLI's --date is
        if why:
            return Reply(why)
    result = app.explain(args[0], day)
    return Reply("\n".join(phone_lines(result)))  # as the Why? button answers: 40 columns, a phone's width


def _last(args, app):
    count = min(int(args[0]), 50) if args and args[0].isdigit() and len(args[0]) < 4 else 5
    return Reply("\n".join(last_alerts_lines(app.last_alerts(count))))


def _chart(args, app):
    months = 6
    if args and args[-1].isdigit() and len(args[-1]) < 5:
        months = int(args.pop())
    if not args:
        return Reply("Usage: /chart SERIES [SERIES2] [months], e.g. /chart IWM DGS10 6")
    chart = app.chart(args[:2], months)
    return Reply(chart.caption, photo=chart.png)


def _mute(args, app):
    if len(args) != 2:
        return Reply(MUTE_USAGE)
    rule_id, duration = args
    app.rule(rule_id)
    try:
        until = app.mute(rule_id, parse_duration(duration))
    except UsageError as exc:
        return Reply(f"{exc}. {MUTE_USAGE}")
    return Reply(f"Muted {rule_id} until {until.astimezone(ET):%a %Y-%m-%d %H:%M %Z}.")


def _unmute(args, app):
    if len(args) != 1:
        return Reply("Usage: /unmute RULE")
    return Reply(f"Unmuted {args[0]}." if app.unmute(args[0]) else f"{args[0]} was not muted.")


def _help(args, app):
    return Reply(help_text())


def help_text() -> str:
    """/help, generated from COMMANDS: one line per command in the menu."""
    return "\n".join(["Closebell commands:"] + [f"{c.usage}: {c.description}" for c in COMMANDS.values() if c.menu])


def menu() -> list[tuple[str, str]]:
    """(command, description) for Telegram's "/" menu (setMyCommands), in /help's order."""
    return [(c.name, c.description) for c in COMMANDS.values() if c.menu]


COMMANDS = {c.name: c for c in [
    Command("status", _status, "/status", "last run, next run, data freshness, pending deliveries"),
    Command("rules", _rules, "/rules", "rules with their last firing"),
    Command("check", _check, "/check", "evaluate the latest session now"),
    Command("why", _why, "/why RULE [YYYY-MM-DD]", "why a rule fired or stayed quiet"),
    Command("last", _last, "/last [n]", "the n most recent alerts (default 5)"),
    Command("chart", _chart, "/chart SERIES [SERIES2] [months]", "a chart, e.g. /chart IWM DGS10 6"),
    Command("mute", _mute, "/mute RULE DURATION", "silence a rule, e.g. /mute small-cap-trap 3d (m, h, d, w)"),
    Command("unmute", _unmute, "/unmute RULE", "let a muted rule alert again"),
    Command("tune", _tune, TUNE_SYNTAX, TUNE_DESCRIPTION),
    Command("help", _help, "/help", "these commands"),
    Command("start", _help, "/start", "these commands (Telegram sends it when a chat opens)", menu=False),
]}
