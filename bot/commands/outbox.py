from __future__ import annotations

import json

from bot.commands.common import series_and_settings


def run(args) -> int:
    from bot.notify.alert import Alert
    from bot.notify.outbox import deliver, now_utc
    from bot.store import open_store
    _series, settings = series_and_settings()
    store = open_store()
    if args.retry:
        requeued = store.outbox_requeue_failed(now_utc())
        store.outbox_recover()
        report = deliver(store, settings, now=now_utc() + _far())
        print(f"requeued {requeued} failed row(s); delivery: {report.line()}")
        for failure in report.failed:
            print(f"failed: {failure}")
    statuses = None if args.all else ("pending", "sending", "failed")
    rows = store.outbox_rows(statuses)
    if args.json:
        print(json.dumps([{"id": r.id, "rule": r.rule_id, "session": f"{r.session}", "channel": r.channel,
                           "status": r.status, "attempts": r.attempts, "error": r.last_error,
                           "next_attempt": f"{r.next_attempt_at}"} for r in rows], indent=2))
        return 0
    if not rows:
        print("outbox: nothing pending or failed" if not args.all else "outbox: empty")
        return 0
    for r in rows:
        title = Alert.from_json(r.payload).title
        error = f"  last error: {r.last_error}" if r.last_error else ""
        print(f"{r.id:>6}  {r.status:8} {r.session}  {r.rule_id:24} {r.channel:22} attempts {r.attempts}  "
              f"{title}{error}")
    return 0


def _far():
    from datetime import timedelta
    return timedelta(days=3650)  # --retry sends now, whatever the backoff said
