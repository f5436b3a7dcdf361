"""The sample alert and chart that `notify-test` sends through each channel."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from bot.engine.frame import Frame
from bot.notify import charts
from bot.notify.alert import Alert


def sample_alert(day: date) -> Alert:
    return Alert(rule_id="notify-test", session=day, severity="warning",
                 title="Closebell test alert <it works & escapes>",
                 text="If you can read this on your phone, delivery works. IWM +3.59% vs SPY -0.86% (sample).",
                 values={"pct_change(IWM, 1)": 3.59})


def sample_chart(day: date) -> bytes:
    sessions = pd.bdate_range(end=pd.Timestamp(day), periods=120)
    rng = np.random.default_rng(7)
    frame = Frame(sessions, daily={"IWM": 200 * np.cumprod(1 + rng.normal(0, 0.01, 120)),
                                   "DGS10": 4.2 + np.cumsum(rng.normal(0, 0.03, 120))})
    return charts.series_chart(frame, ["IWM", "DGS10"], {"DGS10": "percent"}, [sessions[-1]], "notify-test (sample data)")
