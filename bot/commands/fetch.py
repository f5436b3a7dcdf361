"""`fetch`: series into the store from their sources (or a directory of CSV files)."""

from __future__ import annotations

import sys

from bot.commands.common import build_app, parse_date
from bot.errors import SourceError


def run(args) -> int:
    since = parse_date(args.since, "--since")
    app = build_app(args, data_dir=None, needs_rules=False)
    results = app.fetch(args.series, since=since, data_dir=args.data_dir, progress=sys.stderr.isatty())
    for result in results:
        print(result.line(), file=sys.stdout if result.ok else sys.stderr)
    failed = [r for r in results if not r.ok]
    if failed:
        raise SourceError("fetch", f"{len(failed)} of {len(results)} series failed: "
                                   f"{', '.join(r.series for r in failed)}")
    return 0
