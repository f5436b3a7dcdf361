"""One chat command -> one app call -> a plain-text reply (the poller escapes it into HTML).

Every reply is computed by the application core, the same call the CLI makes:
`/check` and `closebell check` share one `CheckResult`. A user's mistake
(unknown rule, bad duration) is a `UsageError` and answered with the usage
line; any other error gets a short apology and a log line, never a traceback
in the chat.
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

from bot.clock import ET
from bot.errors import ClosebellError, UsageError
from bot.render import status_lines
from bot.settings.yamlfile import did_you_mean
from bot.telegram.reply import Reply

log = logging.getLogger(__name__)

HELP = """Closebell commands:
/status: last run, next run, data freshness, pending deliveries
/rules: rules with their last firing
/check: evaluate the latest session now
/why RULE [YYYY-MM-DD]: why a rule fired or stayed quiet
/last [n]: the n most recent alerts (default 5)
/chart SERIES [SERIES2] [months]: a chart, e.g. /chart IWM DGS10 6
/mute RULE DURATION: silence a rule, e.g. /mute small-cap-trap 3d (m, h, d, w)
/unmute RULE
/help"""

DURATION = re.compile(r"^(\d{1,6})\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MUTE_USAGE = "Usage: /mute RULE DURATION, e.g. /mute small-cap-trap 3d (m, h, d or w; at most 366 days)"


def parse_duration(text: str) -> timedelta:
    """'3d' -> 3 days; anything else (or beyond a year) is a UsageError with the usage line."""
    match = DURATION.match(text.strip().lower())
    if not match:
        raise UsageError(f"'{text[:20]}' is not a duration: write a number and m, h, d or w, e.g. 3d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def respond(text: str, app) -> Reply:
    """The reply to one command message (already known to come from an allowed chat)."""
    words = text.strip().split()
    if not words or not words[0].startswith("/"):
        return Reply("Send /help for the commands.")
    command = words[0][1:].split("@")[0].lower()
    args = words[1:]
    handler = HANDLERS.get(command)
    if handler is None:
        return Reply(f"Unknown command /{command[:32]}{did_you_mean(command, HANDLERS)}. Send /help.")
    try:
        return handler(args, app)
    except UsageError as exc:
        return Reply(str(exc))
    except ClosebellError as exc:
        return Reply(f"/{command} could not answer: {exc}")
    except Exception:  # a command must never take the bot down
        log.exception("command /%s failed", command)
        return Reply(f"/{command} failed; the log has the details.")


def _status(args, app):
    return Reply("\n".join(status_lines(app.status())))


def _rules(args, app):
    lines = []
    for rule in app.rules_overview():
        muted = f" (muted until {rule.muted_until.astimezone(ET):%m-%d %H:%M})" if rule.muted_until else ""
        last = f"{rule.last_fired:%Y-%m-%d}" if rule.last_fired else "never"
        lines.append(f"{rule.id} [{rule.severity}]{muted}\n  {rule.title}; last fired {last}")
        if rule.tuned:
            lines.append(f"  {rule.tuned} (/tune {rule.id})")
    return Reply("\n".join(lines) or "No rules.")


def _check(args, app):
    result = app.check()
    lines = [f"Session {result.session:%a %Y-%m-%d}: {len(result.fired)} of {len(result.rules)} rule(s) fire."]
    for state in result.fired:
        lines.append(f"• {state.id}: {state.message}")
    for state in result.rules:
        if state.gaps:
            lines.append(f"({state.id}: {'; '.join(state.gaps)})")
    return Reply("\n".join(lines))


def _why(args, app):
    if not 1 <= len(args) <= 2:
        return Reply("Usage: /why RULE [YYYY-MM-DD], e.g. /why small-cap-trap 2024-07-16")
    day = None
    if len(args) == 2:
        try:
            day = date.fromisoformat(args[1])
        except ValueError:
            return Reply(f"'{args[1][:20]}' is not a date; write YYYY-MM-DD, e.g. /why {args[0]} 2024-07-16")
    result = app.explain(args[0], day)
    return Reply("\n".join(([f"({result.note})"] if result.note else []) + result.lines()))


def _last(args, app):
    count = min(int(args[0]), 50) if args and args[0].isdigit() and len(args[0]) < 4 else 5
    lines = [f"{a.session:%Y-%m-%d} {a.rule_id}: {a.text}" for a in app.last_alerts(count)]
    return Reply("\n".join(lines) or "No alerts sent yet.")


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
    return Reply(HELP)


from bot.telegram.tune import USAGE as TUNE_USAGE, tune as _tune  # noqa: E402 - the handler lives in its own file

HELP += f"\n{TUNE_USAGE}"
HANDLERS = {"tune": _tune, "status": _status, "rules": _rules, "check": _check, "why": _why, "last": _last, "chart": _chart,
            "mute": _mute, "unmute": _unmute, "help": _help, "start": _help}
