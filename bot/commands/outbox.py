"""`outbox`: pending, sending (with who sends it, until when) and failed deliveries; `--retry` sends them now."""

from __future__ import annotations

from bot.commands.common import build_app, print_json
from bot.render.status import claim_text


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
        claim = f"  claimed by {claim_text(r)}" if r.status == "sending" else ""
        print(f"{r.id:>6}  {r.status:8} {r.session}  {r.rule:24} {r.channel:22} attempts {r.attempts}  "
              f"{r.title}{error}{claim}")
    return 0
