from __future__ import annotations

import sys

from bot.commands.common import check_names, parse_date, series_and_settings
from bot.errors import SourceError


def run(args) -> int:
    series_defs, settings = series_and_settings()
    check_names(args.series, series_defs)
    since = parse_date(args.since, "--since")
    from bot.data.fetch import update
    from bot.store import open_store
    store = open_store()
    results = update(store, series_defs, settings, names=args.series, since=since, data_dir=args.data_dir,
                     progress=sys.stderr.isatty())
    for result in results:
        print(result.line(), file=sys.stdout if result.ok else sys.stderr)
    failed = [r for r in results if not r.ok]
    if failed:
        raise SourceError("fetch", f"{len(failed)} of {len(results)} series failed: "
                                   f"{', '.join(r.series for r in failed)}")
    return 0
