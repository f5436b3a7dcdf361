"""`notify-test`: a sample alert through each configured channel, each failure named exactly."""

from __future__ import annotations

import sys

from bot.commands.common import build_app
from bot.errors import DeliveryError
from bot.render.status import channel_line, trouble_line


def run(args) -> int:
    app = build_app(args, data_dir=None, needs_rules=False)
    channels = app.channels()
    if not args.channel:
        for channel in channels:
            print(channel_line(channel), file=sys.stderr)
    print(trouble_line(channels), file=sys.stderr)
    results = app.notify_test(args.channel)
    for result in results:
        if result.ok:
            print(f"{result.destination}: ok")
        else:
            print(f"{result.destination}: FAILED: {result.error}", file=sys.stderr)
    failures = [r for r in results if not r.ok]
    if failures:
        raise DeliveryError("notify-test", f"{len(failures)} channel(s) failed")
    return 0
