"""Months in one process: the daemon's job for every session of 2008-2026, one process, memory sampled.

The bot runs for months on a small server; anything a session leaves behind (a figure, a client, a cache
without a bound, a growing list) adds up to a process that dies in its sleep. Here the session job runs
for every NYSE session from 2008-01-02 to the end of the shipped history (~4,600 sessions) on the simulated
clock of replay, with the shipped rules, charts on and every alert delivered to the Telegram stand-in, and
the process's resident memory (VmRSS) is read after each session. What the first year loads (pandas frames,
matplotlib on the first chart, python-telegram-bot on the first send, SQLite's page cache) is the baseline;
after it, memory may grow by less than 20 MB.

The Telegram stand-in runs in a process of its own: what it receives (each photo ~60 KB) and the threads
that receive it would otherwise be measured as the bot's. The curve (RSS at the end of each year) is printed:
README "Performance" records it.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from datetime import date, datetime

import pandas as pd

from bot.app import App
from bot.clock import ET, SimulatedClock
from bot.daemon.replay import Arrivals, replay
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.store import Store
from tests.conftest import ROOT, copy_config

START = date(2008, 1, 1)
GROWTH_LIMIT_MB = 20


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def last_day(data_dir) -> date:
    with open(data_dir / "IWM.csv") as f:
        return date.fromisoformat(f.readlines()[-1].split(",")[0])


STAND_IN = """
import sys
from tests.telegram_stub import TelegramStub
stub = TelegramStub().start()
print(stub.url, stub.token, flush=True)
sys.stdin.read()  # until the test closes it
print(len(stub.sent("sendPhoto")), len(stub.messages()), flush=True)
stub.stop()
"""


def telegram_elsewhere(monkeypatch):
    """The Bot API stand-in in a child process; the environment points the bot at it."""
    child = subprocess.Popen([sys.executable, "-c", STAND_IN], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    url, token = child.stdout.readline().split()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    monkeypatch.setenv("TELEGRAM_BASE_URL", url)
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001")
    return child


def received(child) -> tuple[int, int]:
    """(photos, messages) the stand-in received; it exits."""
    out, _ = child.communicate(timeout=30)
    photos, messages = out.split()
    return int(photos), int(messages)


def test_every_session_since_2008_in_one_process_grows_memory_less_than_20_mb_after_the_first_year(
        tmp_path, data_dir, monkeypatch, capsys):
    stand_in = telegram_elsewhere(monkeypatch)
    config = copy_config(tmp_path, "notify:\n  charts: true\n  telegram_pace_seconds: 0\n  admin: console\n")
    end = last_day(data_dir)
    clock = SimulatedClock(datetime.combine(START, datetime.min.time(), ET))
    arrivals = Arrivals(str(data_dir))
    console = io.StringIO()
    app = App(LiveConfig(config / "rules.yaml", config), clock=clock, store=Store(f"sqlite:///{tmp_path / 'soak.db'}"),
              fetcher=arrivals, notifiers={"console": Console(stream=console)})
    year_end: dict[int, float] = {}
    peak: dict[int, float] = {}

    def sample(outcome):
        console.seek(0)  # the console's lines are the test's, not the bot's memory
        console.truncate()
        year = outcome.session.year
        year_end[year] = rss_mb()
        peak[year] = max(peak.get(year, 0.0), year_end[year])

    started = time.perf_counter()
    try:
        outcomes = replay(app, arrivals, START, end, after_session=sample)
    finally:
        seconds = time.perf_counter() - started
        app.close()
        photos, messages = received(stand_in)

    sessions = len(pd.bdate_range(START, end))  # an upper bound: NYSE holidays are fewer sessions
    assert 4500 < len(outcomes) <= sessions
    odd = [o for o in outcomes if o.status != "done" and "for want of data" not in (o.reason or "")]
    assert not odd, odd[:3]
    alerts = sum(o.queued for o in outcomes)
    assert alerts > 40 and photos > 40 and messages >= photos  # charts and Telegram ran all along, not once
    curve = " ".join(f"{year}:{mb:.0f}" for year, mb in sorted(year_end.items()))
    with capsys.disabled():
        print(f"\nsoak: {len(outcomes)} sessions {START}..{end} in {seconds:.0f} s, {alerts} alert rows, "
              f"{photos} photos; VmRSS MB at each year's end {curve}; peak {max(peak.values()):.0f} MB")
    first = min(year_end)
    baseline = year_end[first]
    worst = max(mb for year, mb in peak.items() if year > first)
    assert worst - baseline < GROWTH_LIMIT_MB, (
        f"VmRSS grew {worst - baseline:.0f} MB after {first} (from {baseline:.0f} MB): {curve}")
