"""Paths a user walks that had no test: mutes, charts failing, the lock lost, `run --once`, `.env`, stale data,
the tuning commands end to end, pipes closed early."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta

import pandas as pd
import pytest

from bot.app import App
from bot.clock import ET, SimulatedClock
from bot.daemon.replay import Arrivals
from bot.daemon.runner import Daemon
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.store import Store
from tests.conftest import ROOT, copy_config, subprocess_env

ALL = ["IWM", "SPY", "QQQ", "RSP", "DGS10", "DGS2", "CPIAUCSL"]


@pytest.fixture
def config(tmp_path):
    return copy_config(tmp_path)


def make_app(tmp_path, config, data_dir, now, name="u.db", **kwargs):
    out = io.StringIO()
    store = Store(f"sqlite:///{tmp_path / name}")
    arrivals = Arrivals(str(data_dir))
    app = App(LiveConfig(config / "rules.yaml", config), clock=SimulatedClock(now), store=store, fetcher=arrivals,
              notifiers={"console": Console(stream=out)}, **kwargs)
    arrivals.preload(store, app.loaded, ALL, pd.Timestamp("2024-07-01").date())
    return app, out


def run(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "bot", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env=env or subprocess_env(), timeout=300, **kwargs)


def test_a_mute_suppresses_the_next_alert_and_expires(tmp_path, config, data_dir):
    app, out = make_app(tmp_path, config, data_dir, datetime(2024, 7, 10, 21, 0, tzinfo=ET))
    until = app.mute("soft-cpi-rotation", timedelta(days=1))  # 2024-07-11 21:00 ET
    app.clock.set(datetime(2024, 7, 11, 16, 30, tzinfo=ET))
    for day in ("2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08", "2024-07-09", "2024-07-10", "2024-07-11"):
        app.run_session(day)
    assert "soft-cpi-rotation" not in out.getvalue()  # it fired on 07-11, muted
    app.clock.set(until + timedelta(minutes=1))
    assert app.store.mutes(app.clock.now()) == {}  # expired on the (simulated) clock
    app.run_session("2024-07-11")  # the muted firing was never queued: after expiry it is delivered, once
    assert out.getvalue().count("soft-cpi-rotation") == 1


def test_an_alert_whose_chart_cannot_be_drawn_goes_without_it(tmp_path, config, data_dir, telegram, monkeypatch):
    import bot.notify.charts as charts
    (config / "settings.yaml").write_text("notify:\n  charts: true\n  telegram_pace_seconds: 0\n")

    def broken(*_args, **_kwargs):
        raise RuntimeError("no fonts on this host")
    monkeypatch.setattr(charts, "alert_chart", broken)
    app, _ = make_app(tmp_path, config, data_dir, datetime(2024, 7, 11, 21, 0, tzinfo=ET))
    app.notifiers = None
    app.run_session("2024-07-11")
    sent = telegram.messages()
    assert sent and all(call.method == "sendMessage" for call in sent)  # text, no photo
    assert any("Soft CPI print" in call.fields["text"] for call in sent)


class Relock:
    """An instance lock just lost (its connection dropped) that is free to take again, or taken by another."""

    def __init__(self, free: bool):
        self.free = free

    def acquire(self):
        return self.free

    def release(self):
        pass


@pytest.mark.parametrize("free, line, leads", [
    (True, "reconnected and resumed as the active instance", True),
    (False, "another instance holds it now: standing by", False),
], ids=["resumes", "stands by"])
def test_a_daemon_that_loses_its_lock_resumes_or_stands_by_and_says_which(tmp_path, config, data_dir, caplog,
                                                                          free, line, leads):
    """Against PostgreSQL's real lock (pg_terminate_backend): tests/test_ha_postgres.py."""
    app, _ = make_app(tmp_path, config, data_dir, datetime(2024, 7, 11, 21, 0, tzinfo=ET))
    daemon = Daemon(app, Relock(free))
    daemon.stop_event.set()  # stopped while standing by
    assert daemon.acquire(lost=True) is leads
    assert line in caplog.text


def offline(tmp_path, data_dir):
    config = tmp_path / "offline"
    config.mkdir()
    from bot.settings.load import load_series
    lines = ["series:"] + [f"  {n}: {{source: csv, frequency: {s.frequency}, units: {s.units}}}"
                           for n, s in load_series(ROOT / "config" / "series.yaml").items()]
    (config / "series.yaml").write_text("\n".join(lines) + "\n")
    (config / "settings.yaml").write_text(f"sources:\n  csv: {{base_url: '{data_dir}'}}\nnotify:\n  charts: false\n")
    shutil.copy(ROOT / "config" / "rules.yaml", config / "rules.yaml")
    return config


def test_run_once_offline_with_a_stale_store_is_a_failed_run_exit_3_and_a_fail_ping(tmp_path, data_dir, httpserver):
    """The shipped history ends in June 2026: every session after it finds the store stale. Evaluating
    none of the rules it should have is a failed run, whatever else went right."""
    httpserver.expect_request("/ping/abc/fail", method="POST").respond_with_data("OK")
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=offline(tmp_path, data_dir),
                         HEARTBEAT_URL=httpserver.url_for("/ping/abc"))
    proc = run("run", "--once", env=env)
    assert proc.returncode == 3, proc.stderr
    assert "closebell " in proc.stderr and "store: " in proc.stderr and "Traceback" not in proc.stderr
    assert ": failed: could not evaluate small-cap-trap, soft-cpi-rotation" in proc.stderr
    assert "IWM (latest 2026-06-12; no value yet from csv)" in proc.stderr
    status = run("status", env=env)
    first = status.stdout.splitlines()[0]
    assert first.startswith("last run: ") and " failed" in first, status.stdout
    fail = [r for r, _ in httpserver.log if r.path == "/ping/abc/fail"]
    assert len(fail) == 1 and b"could not evaluate" in fail[0].get_data()
    again = run("run", "--once", env=env)  # a failed session is run again, and fails again: still exit 3
    assert again.returncode == 3 and ": failed: " in again.stderr


def test_dotenv_in_the_working_directory_configures_a_channel(tmp_path, telegram):
    (tmp_path / ".env").write_text(f"# secrets\nTELEGRAM_BOT_TOKEN={telegram.token}\nTELEGRAM_CHAT_IDS=1001\n"
                                   f"TELEGRAM_BASE_URL={telegram.url}\n")
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=ROOT / "config")
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_IDS", "TELEGRAM_BASE_URL"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "bot", "notify-test", "--channel", "telegram"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "telegram:1001: ok"
    assert telegram.token not in proc.stdout + proc.stderr


def test_stale_series_are_marked_by_status_named_by_check_and_noticed_once_per_episode(tmp_path, config,
                                                                                     data_dir):
    app, out = make_app(tmp_path, config, data_dir, datetime(2024, 7, 10, 21, 0, tzinfo=ET))

    def iwm_stops(store, loaded, names, session, today):  # IWM's feed dies after 07-08
        rows = Arrivals(str(data_dir))(store, loaded, [n for n in names if n != "IWM"], session)
        if pd.Timestamp(session) <= pd.Timestamp("2024-07-08"):
            rows += Arrivals(str(data_dir))(store, loaded, ["IWM"], session)
        return rows
    app.fetcher = iwm_stops
    for day in ("2024-07-08", "2024-07-09", "2024-07-10"):
        app.clock.set(datetime.combine(pd.Timestamp(day).date(), datetime.min.time(), ET) + timedelta(hours=21))
        app.run_session(day)
    notices = [line for line in out.getvalue().splitlines() if "notice:stale" in line]
    assert len(notices) == 1 and "IWM" in notices[0] and "small-cap-trap" in notices[0]
    status = app.status()
    assert [s.name for s in status.series if s.stale] == ["IWM"]
    assert app.check().stale[0].series == "IWM"


def test_explain_sweep_and_test_rules_end_to_end(tmp_path, data_dir):
    d = ["--data-dir", data_dir]
    explained = json.loads(run("explain", "small-cap-trap", "--date", "2024-07-16", "--json", *d).stdout)
    [lead, rates] = explained["condition"]["children"]
    assert (lead["holds"], rates["holds"], rates["value"], rates["threshold"]) == (True, False, -0.13, 0.0)
    rows = json.loads(run("sweep", "small-cap-trap", "lead=4,5", "--json", *d).stdout)
    backtest = json.loads(run("backtest", "--json", *d).stdout)
    assert [r["params"]["lead"] for r in rows] == [4, 5]
    assert rows[1]["firings"] == backtest["rules"]["small-cap-trap"]["count"]  # 5 is the shipped value
    assert rows[1]["dates"] == backtest["rules"]["small-cap-trap"]["fires"]
    bad = tmp_path / "rules.test.yaml"
    bad.write_text("tests:\n  - rule: small-cap-trap\n    fires: [2024-07-16]\n")
    proc = run("test-rules", "--tests", bad, *d)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith(f"{bad}:3:5: small-cap-trap: ")
    assert "explain: closebell explain small-cap-trap --date 2024-07-16" in proc.stdout
    assert proc.stdout.splitlines()[-1] == f"{bad}: 0 passed, 1 failed (1 expectation)"
    unknown = run("sweep", "small-cap-trap", "lead=4", "ralley=1", *d)
    assert unknown.returncode == 2 and "no parameter 'ralley'" in unknown.stderr


def test_a_pipe_closed_early_ends_quietly(data_dir):
    proc = subprocess.run(f"{sys.executable} -m bot backtest --all --data-dir {data_dir} | head -1", shell=True,
                          cwd=ROOT, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.stdout.startswith("Backtest ") and proc.stderr == ""
