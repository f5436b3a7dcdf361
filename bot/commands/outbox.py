"""`outbox`: pending and failed deliveries; `--retry` sends them now."""

from __future__ import annotations

from bot.commands.common import build_app, print_json


def run(args) -> int:
    app = build_app(args)
    if args.retry:
        result = app.retry_deliveries()
        print(f"requeued {result.requeued} failed row(s); delivery: {result.report.line()}")
        for failure in result.report.failed:
            print(f"failed: {failure}")
    rows = app.deliveries(include_sent=args.all)
    if args.json:
        print_json([r.to_json() for r in rows], args.pretty)
        return 0
    if not rows:
        print("outbox: nothing pending or failed" if not args.all else "outbox: empty")
        return 0
    for r in rows:
        error = f"  last error: {r.error}" if r.error else ""
        print(f"{r.id:>6}  {r.status:8} {r.session}  {r.rule:24} {r.channel:22} attempts {r.attempts}  "
              f"{r.title}{error}")
    return 0
