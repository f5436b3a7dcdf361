from __future__ import annotations

import sys
from datetime import date

from bot.commands.common import UsageError, series_and_settings
from bot.errors import DeliveryError


def sample_alert():
    from bot.notify.alert import Alert
    return Alert(rule_id="notify-test", session=date.today(), severity="info",
                 title="Closebell test alert <it works & escapes>",
                 text="If you can read this on your phone, delivery works. IWM +3.59% vs SPY -0.86% (sample).",
                 values={"pct_change(IWM, 1)": 3.59})


def sample_chart():
    import numpy as np
    import pandas as pd
    from bot.engine.frame import Frame
    from bot.notify.charts import series_chart
    sessions = pd.bdate_range(end=pd.Timestamp.today().normalize(), periods=120)
    rng = np.random.default_rng(7)
    frame = Frame(sessions, daily={"IWM": 200 * np.cumprod(1 + rng.normal(0, 0.01, 120)),
                                   "DGS10": 4.2 + np.cumsum(rng.normal(0, 0.03, 120))})
    return series_chart(frame, ["IWM", "DGS10"], {"DGS10": "percent"}, [sessions[-1]], "notify-test (sample data)")


def run(args) -> int:
    from bot.notify import NOTIFIERS, configured, make_notifier, notifier_module
    _series, settings = series_and_settings()
    channels = [args.channel] if args.channel else [c for c in NOTIFIERS if configured(c)]
    if args.channel and args.channel not in NOTIFIERS:
        raise UsageError(f"unknown channel '{args.channel}' (channels: {', '.join(NOTIFIERS)})")
    alert, chart = sample_alert(), sample_chart()
    failures = 0
    for channel in channels:
        if not configured(channel):
            needs = ", ".join(notifier_module(channel).REQUIRED_ENV)
            print(f"{channel}: not configured: set {needs}", file=sys.stderr)
            failures += 1
            continue
        notifier = make_notifier(channel, settings)
        for recipient in notifier.recipients():
            results: list = []
            notifier.send(recipient, [alert], {0: chart}, lambda _i, delivery, out=results: out.append(delivery))
            where = f"{channel}:{recipient}" if recipient else channel
            if results and results[0].ok:
                print(f"{where}: ok")
            else:
                failures += 1
                print(f"{where}: FAILED: {results[0].error if results else 'no answer'}", file=sys.stderr)
    if failures:
        raise DeliveryError("notify-test", f"{failures} channel(s) failed")
    return 0
