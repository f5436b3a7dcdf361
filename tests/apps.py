"""What tests of a whole App share: one over a SQLite store and a simulated clock, its history preloaded
from the real data, alerts to a console it can read back; and the CLI in a child process."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import pandas as pd

from bot.app import App
from bot.clock import SimulatedClock
from bot.daemon.replay import Arrivals
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.settings.load import load_series
from bot.store import Store
from bot.telegram.poller import CommandPoller
from tests.conftest import ROOT, subprocess_env, wait_for

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


def offline_config(tmp_path, data_dir):
    """Settings whose every series comes from the shipped CSV files: a `run` that needs no network."""
    config = tmp_path / "offline"
    config.mkdir()
    lines = ["series:"]
    for name, series in load_series(ROOT / "config" / "series.yaml").items():
        lines.append(f"  {name}: {{source: csv, frequency: {series.frequency}, units: {series.units}}}")
    (config / "series.yaml").write_text("\n".join(lines) + "\n")
    (config / "settings.yaml").write_text(f"sources:\n  csv: {{base_url: '{data_dir}'}}\nnotify:\n  charts: false\n")
    shutil.copy(ROOT / "config" / "rules.yaml", config / "rules.yaml")
    return config


def run_poller_until(app, predicate) -> bool:
    """Poll the Telegram stand-in with `app`'s commands until `predicate()` holds (True) or 20 s pass."""
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05, backoff=0.05)
    poller.start()
    try:
        return wait_for(predicate)
    finally:
        poller.stop()
