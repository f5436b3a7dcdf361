"""What the command renderers share: building the app from arguments, parsing dates, printing JSON."""

from __future__ import annotations

import io
import json
import sys
from datetime import date

from bot.app import App
from bot.errors import UsageError
from bot.settings import env
from bot.settings.paths import out_of_range


def parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date; write YYYY-MM-DD, e.g. 2024-07-11") from None
    why = out_of_range(day)
    if why:
        raise UsageError(f"{option} {why}")
    return day


def parse_window(args) -> tuple[date | None, date | None]:
    start, end = parse_date(args.from_, "--from"), parse_date(args.to, "--to")
    if start and end and start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    return start, end


def build_app(args, **kwargs):
    """The application core for this command: --config/--rules/--data-dir applied; ConfigError if invalid."""
    kwargs.setdefault("data_dir", getattr(args, "data_dir", None))
    kwargs.setdefault("heartbeat_url", env.get("HEARTBEAT_URL"))
    return App.open(rules_path=getattr(args, "rules", None), **kwargs)


def write_chart(path: str, draw, option: str = "--plot") -> None:
    """`draw(buffer)` draws a PNG in memory, then it is written to `path`, every error one line.

    Written with open/write/close checked to the last byte: a missing
    directory fails at open, a full disk (/dev/full) only when the buffered
    bytes are flushed at close, which a bare savefig(path) never reports.
    """
    buffer = io.BytesIO()
    draw(buffer)
    try:
        with open(path, "wb") as handle:
            handle.write(buffer.getvalue())
    except OSError as exc:
        raise UsageError(f"{option} {path}: the chart cannot be written ({exc.strerror or exc}); "
                         "give a path in a directory you can write to") from None
    print(f"chart written to {path}", file=sys.stderr)


def print_json(data, pretty: bool = False) -> None:
    """JSON on stdout: compact by default (machines read it), indented with --pretty."""
    json.dump(data, sys.stdout, indent=2 if pretty else None, separators=None if pretty else (",", ":"))
    sys.stdout.write("\n")
