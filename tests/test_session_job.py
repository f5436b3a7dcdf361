"""The app's session job beyond alerts: the digest, the heartbeat, failed runs said out loud."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from datetime import datetime

import pandas as pd
import pytest

from bot.app import App
from bot.clock import ET, SimulatedClock
from bot.daemon.replay import Arrivals
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.store import Store
from tests.conftest import ROOT, copy_config, subprocess_env

ALL = ["IWM", "SPY", "QQQ", "RSP", "DGS10", "DGS2", "CPIAUCSL"]


@pytest.fixture
def config(tmp_path):
    return copy_config(tmp_path, "digest: daily\nnotify:\n  charts: false\n")


def make_app(tmp_path, config, data_dir, now, heartbeat=None, name="s.db"):
    out = io.StringIO()
    store = Store(f"sqlite:///{tmp_path / name}")
    arrivals = Arrivals(str(data_dir))
    app = App(LiveConfig(config / "rules.yaml", config), clock=SimulatedClock(now), store=store, fetcher=arrivals,
              notifiers={"console": Console(stream=out)}, heartbeat_url=heartbeat)
    return app, arrivals, out


def test_the_digest_says_what_fired_once_per_session_also_across_a_restart(tmp_path, config, data_dir):
    evening = datetime(2024, 7, 11, 16, 30, tzinfo=ET)
    app, arrivals, out = make_app(tmp_path, config, data_dir, evening)
    arrivals.preload(app.store, app.loaded, ALL, pd.Timestamp("2024-07-11").date())
    assert app.session_job.run_session("2024-07-11").status == "done"
    again, _, out2 = make_app(tmp_path, config, data_dir, evening)  # a restart: a new process, the same store
    again.session_job.run_session("2024-07-11")
    text = out.getvalue() + out2.getvalue()
    assert len([line for line in text.splitlines() if "digest:daily" in line]) == 1
    assert "    Fired: soft-cpi-rotation." in text  # the digest's continuation line on the console


def test_on_a_quiet_session_the_digest_lists_the_rules_nearest_to_firing_with_their_margins(tmp_path, config,
                                                                                           data_dir):
    app, arrivals, out = make_app(tmp_path, config, data_dir, datetime(2024, 7, 16, 16, 30, tzinfo=ET))
    arrivals.preload(app.store, app.loaded, ALL, pd.Timestamp("2024-07-16").date())
    app.session_job.run_session("2024-07-16")
    text = out.getvalue()
    assert "Nothing fired. Nearest to firing:" in text
    bullets = [line for line in text.splitlines() if line.strip().startswith("• ")]
    assert 1 <= len(bullets) <= 3 and all("needs" in b for b in bullets)
    assert any("small-cap-trap" in b and "change(DGS10, 5)" in b for b in bullets)


def test_the_heartbeat_pings_after_a_good_session_once_and_reports_a_failed_one(tmp_path, config, data_dir,
                                                                               httpserver):
    httpserver.expect_request("/ping/abc").respond_with_data("OK")
    httpserver.expect_request("/ping/abc/fail", method="POST").respond_with_data("OK")
    url = httpserver.url_for("/ping/abc")
    evening = datetime(2024, 7, 11, 21, 0, tzinfo=ET)
    app, arrivals, _ = make_app(tmp_path, config, data_dir, evening, heartbeat=url)
    arrivals.preload(app.store, app.loaded, ALL, pd.Timestamp("2024-07-11").date())
    app.session_job.run_session("2024-07-11")
    restarted, _, _ = make_app(tmp_path, config, data_dir, evening, heartbeat=url)
    assert restarted.session_job.catch_up() == []  # 07-11 is done: not run, not pinged again
    paths = [(r.method, r.path) for r, _ in httpserver.log]
    assert paths == [("GET", "/ping/abc")]

    def no_data(store, loaded, names, session, today):
        return []
    broken, _, _ = make_app(tmp_path, config, data_dir, evening, heartbeat=url, name="empty.db")
    broken.fetcher = no_data
    outcome = broken.session_job.run_session("2024-07-11")
    assert outcome.status == "failed" and "no stored data" in outcome.reason
    assert broken.store.runs_list(1)[0].status == "failed"
    fail = [r for r, _ in httpserver.log if r.path == "/ping/abc/fail"]
    assert len(fail) == 1 and b"failed" in fail[0].get_data()


def test_run_once_with_the_network_down_exits_3_records_the_failure_and_says_what_to_do(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(ROOT / "config" / "series.yaml", config / "series.yaml")
    shutil.copy(ROOT / "config" / "rules.yaml", config / "rules.yaml")
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    sources = "".join(f"  {name}: {{base_url: '{dead}', timeout: 2}}\n"
                      for name in ("treasury", "fred", "yahoo", "nasdaq", "bls"))
    (config / "settings.yaml").write_text(f"sources:\n{sources}notify:\n  charts: false\n")
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=config, CLOSEBELL_HTTP_BACKOFF="0")
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--once"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "could not run" in proc.stderr and "Traceback" not in proc.stderr
    assert "--data-dir" not in proc.stderr and "retried at the next close" not in proc.stderr
    status = subprocess.run([sys.executable, "-m", "bot", "status"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert "failed" in status.stdout.splitlines()[0] and "not finished" not in status.stdout


def test_a_start_after_a_long_outage_catches_up_the_window_and_says_once_which_sessions_were_missed(
        tmp_path, config, data_dir):
    (config / "settings.yaml").write_text("notify:\n  admin: console\n  charts: false\nschedule:\n"
                                          "  catch_up_sessions: 2\n")
    app, arrivals, out = make_app(tmp_path, config, data_dir, datetime(2024, 7, 12, 21, 0, tzinfo=ET))
    arrivals.preload(app.store, app.loaded, ALL, pd.Timestamp("2024-07-01").date())
    app.store.run_started(pd.Timestamp("2024-07-02").date(), app.clock.now(), False)
    app.store.run_finished(pd.Timestamp("2024-07-02").date(), app.clock.now(), "done")
    outcomes = app.session_job.catch_up()
    assert [f"{o.session}" for o in outcomes] == ["2024-07-11", "2024-07-12"]
    notices = [line for line in out.getvalue().splitlines() if "notice:missed" in line]
    assert len(notices) == 1
    assert "2024-07-03 .. 2024-07-10 (5) were not evaluated" in notices[0]
    again, _, out2 = make_app(tmp_path, config, data_dir, datetime(2024, 7, 12, 21, 5, tzinfo=ET))
    assert again.session_job.catch_up() == [] and "notice:missed" not in out2.getvalue()
