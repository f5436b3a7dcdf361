"""What tests of a whole App share: one over a SQLite store and a simulated clock, its history preloaded
from the real data, alerts to a console it can read back; and the CLI in a child process."""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd

from bot.app import App
from bot.clock import SimulatedClock
from bot.daemon.replay import Arrivals
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.store import Store
from tests.conftest import ROOT, subprocess_env

ALL = ["IWM", "SPY", "QQQ", "RSP", "DGS10", "DGS2", "CPIAUCSL"]


def make_app(tmp_path, config, data_dir, now, name="u.db", **kwargs):
    out = io.StringIO()
    store = Store(f"sqlite:///{tmp_path / name}")
    arrivals = Arrivals(str(data_dir))
    app = App(LiveConfig(config / "rules.yaml", config), clock=SimulatedClock(now), store=store, fetcher=arrivals,
              notifiers={"console": Console(stream=out)}, **kwargs)
    arrivals.preload(store, app.loaded, ALL, pd.Timestamp("2024-07-01").date())
    return app, out


def closebell(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "bot", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env=env or subprocess_env(), timeout=300, **kwargs)
