"""1,000 queued alerts through the email path (local aiosmtpd) and the Telegram stand-in, and chart rendering.

    python benchmarks/bench_delivery.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

from _common import ROOT, data_dir, peak_rss_mb, timer

sys.path.insert(0, str(ROOT))
COUNT = 1000


def alerts():
    from bot.notify.alert import Alert
    start = date(2020, 1, 1)
    return [Alert(rule_id=f"rule-{i % 10}", session=start + timedelta(days=i // 10), severity="warning",
                  title=f"Benchmark alert {i}", text=f"IWM +{i % 7}.0% while the 10y yield rose {i % 13} bp")
            for i in range(COUNT)]


def queue_and_deliver(base: Path, channel: str, settings) -> str:
    """Queue COUNT alerts for `channel` in a fresh store, deliver them all; the figures as text."""
    from bot.clock import SYSTEM
    from bot.notify.delivery import deliver, enqueue
    from bot.store import Store
    store = Store(f"sqlite:///{base / f'{channel}.db'}")
    with timer() as q:
        enqueue(store, [(a, [channel]) for a in alerts()], settings, now=SYSTEM.now())
    with timer() as d:
        report = deliver(store, settings)
    return (f"{COUNT} alerts queued in {q.seconds:.2f}s, delivered in {d.seconds:.2f}s "
            f"({COUNT / d.seconds:,.0f} alerts/s); {report.line()}")


def email_path(base: Path):
    import socket
    from aiosmtpd.controller import Controller
    from bot.settings.models import Settings

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            Sink.count += 1
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    os.environ.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_SECURITY="none", EMAIL_TO="me@bench.test")
    figures = queue_and_deliver(base, "email", Settings())
    controller.stop()
    print(f"delivery[email]: {figures}; {Sink.count} summary message(s)")


def telegram_path(base: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from telegram_stub import TelegramStub
    from bot.settings.models import Settings
    stub = TelegramStub().start()
    os.environ.update(TELEGRAM_BOT_TOKEN=stub.token, TELEGRAM_CHAT_IDS="1001", TELEGRAM_BASE_URL=stub.url)
    figures = queue_and_deliver(base, "telegram", Settings(notify={"telegram_pace_seconds": 0}))
    stub.stop()
    print(f"delivery[telegram]: {figures}; {len(stub.messages())} messages (pacing off)")


def charts():
    from bot.app.evaluation import prepare
    from bot.settings.rules_file import load_rules
    from bot.notify.charts import alert_chart
    from bot.settings.load import load_series
    series = load_series(ROOT / "config" / "series.yaml")
    rules = load_rules(ROOT / "config" / "rules.yaml", series)
    prepared = prepare(rules, series, data_dir=str(data_dir()))
    units = {n: s.units for n, s in series.items()}
    alert_chart(prepared.frame, rules[0], "2024-07-11", units)  # warm matplotlib
    sizes = []
    with timer() as t:
        for rule in rules * 4:
            sizes.append(len(alert_chart(prepared.frame, rule, "2024-07-11", units)))
    print(f"charts: {t.seconds / len(sizes) * 1000:.0f} ms per alert chart ({len(sizes)} drawn), "
          f"PNG {min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KB")


def main():
    with tempfile.TemporaryDirectory(prefix="closebell-delivery-") as tmp:
        email_path(Path(tmp))
        telegram_path(Path(tmp))
    charts()
    print(f"delivery: peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
