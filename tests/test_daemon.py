"""The bot itself: readiness, catch-up, one active instance, live rules, replay."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime

import pandas as pd
import pytest

from bot.app import App
from bot.app.session import SessionJob
from bot.clock import ET, SimulatedClock
from bot.daemon.replay import Arrivals
from bot.daemon.runner import Daemon
from bot.errors import StoreError
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.store import Store
from bot.store.lock import InstanceLock
from tests.apps import offline_config
from tests.conftest import ROOT, copy_config, sqlite_outbox_counts, subprocess_env


@pytest.fixture
def config_dir(tmp_path):
    return copy_config(tmp_path)


class Harness:
    """A daemon on a simulated clock, its data arriving from the shipped history, its console captured."""

    def __init__(self, store, config_dir, data_dir, now, fetch=None):
        self.out = io.StringIO()
        self.config = LiveConfig(config_dir / "rules.yaml", config_dir)
        self.store = store
        self.clock = SimulatedClock(now)
        self.app = App(self.config, clock=self.clock, store=store, fetcher=fetch or Arrivals(str(data_dir)),
                       notifiers={"console": Console(stream=self.out)})
        self.daemon = Daemon(self.app, InstanceLock(store))

    def lines(self):
        return [line for line in self.out.getvalue().splitlines() if line]


def mark_done(store, day):
    store.run_started(pd.Timestamp(day).date(), datetime.now(ET), False)
    store.run_finished(pd.Timestamp(day).date(), datetime.now(ET), "done")


def test_catch_up_after_a_three_day_outage_delivers_each_missed_alert_once_marked_late(store, config_dir,
                                                                                       data_dir):
    harness = Harness(store, config_dir, data_dir, datetime(2024, 7, 12, 21, 0, tzinfo=ET))
    Arrivals(str(data_dir)).preload(store, harness.config.get(), ["IWM", "SPY", "QQQ", "RSP", "DGS10", "DGS2",
                                                                 "CPIAUCSL"], pd.Timestamp("2024-07-10").date())
    mark_done(store, "2024-07-09")  # the bot was down from the evening of 07-10
    harness.daemon.catch_up()
    assert [f"{r.session}" for r in store.runs_list(10) if r.status == "done"][:3] == \
        ["2024-07-12", "2024-07-11", "2024-07-10"]
    assert harness.lines() == [line for line in harness.lines() if "(late)" in line]
    assert [line.split()[:2] for line in harness.lines()] == [["2024-07-11", "soft-cpi-rotation"]]
    harness.daemon.catch_up()  # nothing missed any more, nothing sent twice
    assert len(harness.lines()) == 1


class LateData:
    """A fetcher whose source has nothing newer than the day before the session."""

    def __init__(self, data_dir):
        self.arrivals = Arrivals(str(data_dir))

    def __call__(self, store, loaded, names, session, today=None):
        return self.arrivals(store, loaded, names, pd.Timestamp(session) - pd.Timedelta(days=1))


def test_missing_data_waits_then_at_the_deadline_skips_stale_rules_and_says_so_once(store, config_dir, data_dir):
    evening = datetime(2024, 7, 11, 16, 30, tzinfo=ET)
    harness = Harness(store, config_dir, data_dir, evening, fetch=LateData(data_dir))
    outcome = harness.daemon.process(pd.Timestamp("2024-07-11"))
    assert outcome.status == "waiting" and "IWM" in outcome.missing
    assert not harness.lines()
    harness.clock.set(evening.replace(hour=20))
    outcome = harness.daemon.process(pd.Timestamp("2024-07-11"))
    assert outcome.status == "failed"  # evaluated what it could; run again at the next close
    assert "soft-cpi-rotation" in outcome.skipped and "could not evaluate" in outcome.reason
    notices = [line for line in harness.lines() if "notice:late" in line]
    assert len(notices) == 1 and "Data late for 2024-07-11" in notices[0] and "IWM" in notices[0]
    harness.daemon.process(pd.Timestamp("2024-07-11"))
    assert len([line for line in harness.lines() if "notice:late" in line]) == 1


def test_an_invalid_rules_edit_keeps_the_last_good_rules_and_reports_once(store, config_dir, data_dir):
    harness = Harness(store, config_dir, data_dir, datetime(2024, 7, 11, 21, 0, tzinfo=ET))
    good = harness.config.get().rules
    rules = config_dir / "rules.yaml"
    rules.write_text(rules.read_text().replace("mom_pct(CPIAUCSL) <= 0.1", "mom_pct(CPIAUSCL) <= 0.1"))
    assert harness.config.get().rules == good
    assert harness.config.get().rules == good
    harness.app.deliver_due()
    notices = [line for line in harness.lines() if "notice:config" in line]
    assert len(notices) == 1
    assert "rules.yaml:" in harness.out.getvalue() and "unknown series 'CPIAUSCL'" in harness.out.getvalue()
    rules.write_text(rules.read_text().replace("mom_pct(CPIAUSCL) <= 0.1", "mom_pct(CPIAUCSL) <= 0.2"))
    assert "<= 0.2" in harness.config.get().rules[1].when_text


def test_a_second_instance_on_the_same_sqlite_store_is_refused_with_a_clear_message(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'closebell.db'}")
    first = InstanceLock(store)
    assert first.acquire()
    with pytest.raises(StoreError, match=r"another Closebell instance \(pid \d+\) is running"):
        InstanceLock(Store(store.url)).acquire()
    first.release()
    assert InstanceLock(store).acquire()


def test_a_crashed_instance_does_not_leave_the_lock_stuck(tmp_path):
    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from bot.store import open_store; from bot.store.lock import InstanceLock\n"
        "lock = InstanceLock(open_store()); lock.acquire(); print('locked', flush=True); time.sleep(60)")],
        env=subprocess_env(CLOSEBELL_HOME=home), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    refused = subprocess.run([sys.executable, "-m", "bot", "run", "--once"], capture_output=True, text=True,
                             env=subprocess_env(CLOSEBELL_HOME=home), cwd=ROOT, timeout=60)
    assert refused.returncode == 4 and "another Closebell instance" in refused.stderr
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    store = Store(f"sqlite:///{home / 'closebell.db'}")
    assert InstanceLock(store).acquire()


def test_on_postgresql_a_standby_takes_over_when_the_active_instance_dies(pg_url):
    active, standby = InstanceLock(Store(pg_url)), InstanceLock(Store(pg_url))
    assert active.acquire()
    assert not standby.acquire()
    active._conn.invalidate()  # the process died: its connection is gone
    active._conn = None
    assert standby.acquire() and standby.alive()
    standby.release()


def replay(data_dir, start, end, home, *extra, **env):
    return subprocess.run([sys.executable, "-m", "bot", "replay", "--data-dir", str(data_dir), "--from", start,
                           "--to", end, *extra], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=subprocess_env(CLOSEBELL_HOME=home, **env))


def test_replaying_2024_delivers_the_soft_cpi_alert_that_evening_and_agrees_with_backtest(data_dir, tmp_path):
    proc = replay(data_dir, "2024-01-01", "2024-12-31", tmp_path / "home", "--fresh")
    assert proc.returncode == 0, proc.stderr
    delivered = sorted((line.split()[0], line.split()[1]) for line in proc.stdout.splitlines() if line[:4] == "2024")
    assert ("2024-07-11", "soft-cpi-rotation") in delivered
    backtest = subprocess.run([sys.executable, "-m", "bot", "backtest", "--data-dir", str(data_dir), "--from",
                               "2024-01-01", "--to", "2024-12-31", "--json"], capture_output=True, text=True,
                              cwd=ROOT, env=subprocess_env(), timeout=120)
    fires = json.loads(backtest.stdout)["rules"]
    assert delivered == sorted((day, rule) for rule, body in fires.items() for day in body["fires"])


@pytest.mark.parametrize("send", [False, True], ids=["printed", "with --send"])
def test_a_replay_with_telegram_configured_messages_the_phone_only_with_send(data_dir, tmp_path, telegram, send):
    home = tmp_path / "home"
    home.mkdir()
    (home / "closebell.db").write_bytes(b"")  # the live store: a replay never opens it
    proc = replay(data_dir, "2024-07-01", "2024-07-31", home, "--fresh", *(["--send"] if send else []),
                  TELEGRAM_CHAT_IDS="1001")
    assert proc.returncode == 0, proc.stderr
    printed = [line for line in proc.stdout.splitlines() if line.startswith("2024-07-")]
    assert [line.split()[1] for line in printed] == ["soft-cpi-rotation", "small-caps-over-nasdaq",
                                                     "small-cap-trap", "breadth-broadening"]
    if send:
        assert "replay --send: 4 alert(s) from 2024-07-01 to 2024-07-31 will be delivered to: console, telegram" \
            in proc.stderr
        assert len(telegram.messages()) == 4
    else:
        assert telegram.sent() == []  # not a message, not even getMe
        assert "printing alerts only; telegram not used (--send delivers them)" in proc.stderr
    assert (home / "closebell.db").read_bytes() == b""


BUSY_RULES = """
rules:
  - id: iwm-up
    title: IWM up on the day
    when: pct_change(IWM, 1) > 0
    cooldown: 0
    notify: [telegram]
"""


def test_a_replay_killed_mid_delivery_and_restarted_delivers_every_alert_exactly_once(data_dir, tmp_path,
                                                                                     telegram):
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(ROOT / "config" / "series.yaml", config / "series.yaml")
    (config / "rules.yaml").write_text(BUSY_RULES)
    (config / "settings.yaml").write_text("notify:\n  telegram_pace_seconds: 0.05\n  charts: false\n")
    env = dict(CLOSEBELL_CONFIG=config, TELEGRAM_CHAT_IDS="1001")
    cmd = [sys.executable, "-m", "bot", "replay", "--data-dir", str(data_dir), "--from", "2024-06-01", "--to",
           "2024-08-31", "--send"]
    first = subprocess.Popen(cmd + ["--fresh"], cwd=ROOT, env=subprocess_env(CLOSEBELL_HOME=tmp_path / "h", **env),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill right after the 8th delivery is recorded as sent: the process is then evaluating the next
    # session. (A kill between Telegram accepting a message and that record would resend that one
    # alert: the Bot API has no idempotency key. The README and the notes say so.)
    replay_db = tmp_path / "h" / "replay-send.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sqlite_outbox_counts(replay_db).get("sent", 0) >= 8:
            break
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 8 <= len(telegram.messages()) < 40
    second = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(CLOSEBELL_HOME=tmp_path / "h", **env),
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    sessions = [call.fields["text"].split("\n")[1].removeprefix("<i>").split(" · ")[0]
                for call in telegram.messages()]
    expected = backtest_days(data_dir, config, "2024-06-01", "2024-08-31")
    assert sorted(sessions) == sorted(pd.Timestamp(d).strftime("%a %Y-%m-%d") for d in expected)
    assert len(sessions) == len(set(sessions))


def backtest_days(data_dir, config, start, end):
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "backtest", "--data-dir",
                           str(data_dir), "--from", start, "--to", end, "--json"], capture_output=True, text=True,
                          cwd=ROOT, env=subprocess_env(), timeout=120)
    return json.loads(proc.stdout)["rules"]["iwm-up"]["fires"]


def test_run_catches_up_waits_and_stops_cleanly_on_sigterm(tmp_path, data_dir):
    config = offline_config(tmp_path, data_dir)
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=config)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log_lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        log_lines.append(line)
        if "running; next job for" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    log = "".join(log_lines) + err
    assert proc.returncode == 0, log
    assert "catching up 1 session(s)" in log
    assert "fetch IWM: " in log and "from csv" in log
    assert "received SIGTERM" in log and log.rstrip().endswith("stopped")
    status = subprocess.run([sys.executable, "-m", "bot", "status"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "last run:" in status.stdout and "next run:" in status.stdout and "IWM" in status.stdout


def read_until(proc, marker, lines, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            return False
        lines.append(line)
        if marker in line:
            return True
    return False


def test_on_postgresql_two_runs_one_stands_by_and_takes_over_when_the_first_is_killed(tmp_path, data_dir,
                                                                                      pg_url):
    config = offline_config(tmp_path, data_dir)
    (config / "settings.yaml").write_text((config / "settings.yaml").read_text()
                                          + "schedule:\n  standby_retry_seconds: 1\n")
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=config, DATABASE_URL=pg_url)
    first = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    second = None
    try:
        first_log, second_log = [], []
        assert read_until(first, "running; next job for", first_log), "".join(first_log)
        second = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert read_until(second, "standing by", second_log), "".join(second_log)
        first.send_signal(signal.SIGKILL)
        first.wait()
        started = time.monotonic()
        assert read_until(second, "took over as the active instance", second_log, 60), "".join(second_log)
        assert time.monotonic() - started < 60
        assert read_until(second, "running; next job for", second_log), "".join(second_log)
        runs = Store(pg_url).runs_list(10)
        # one record for the session, not a second one from the takeover; it is failed, not done, because the
        # shipped history ends before today's latest session (a stale store is a failed run)
        assert len(runs) == 1 and runs[0].status == "failed" and "could not evaluate" in runs[0].detail
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    assert second.returncode == 0


def test_an_isolated_daemon_runs_each_job_in_a_child_on_its_last_good_rules(store, tmp_path, data_dir, capfd,
                                                                            monkeypatch):
    """`run`'s daemon hands each session's job to a child process that exits after it (bot.daemon.child), so
    what a job loads (yfinance, matplotlib, the history's frames) never stays resident. The child runs the
    daemon's last good rules, its store and its clock; its alerts reach the outbox and the console once."""
    import multiprocessing
    from datetime import date

    config = offline_config(tmp_path, data_dir)
    live = LiveConfig(config / "rules.yaml", config)
    app = App(live, clock=SimulatedClock(datetime(2024, 7, 11, 21, 0, tzinfo=ET)), store=store)
    assert len(app.loaded.rules) == 6
    rules = config / "rules.yaml"
    rules.write_text(rules.read_text().replace("cooldown: 15", "cooldwn: 15", 1))  # an invalid edit since
    monkeypatch.setattr(SessionJob, "run_due", lambda *a: pytest.fail("the job ran in the daemon's own process"))
    daemon = Daemon(app, InstanceLock(store), isolated=True)
    outcome = daemon.process(date(2024, 7, 11))
    assert outcome.status == "done", outcome.line()
    assert outcome.queued == 1  # soft-cpi-rotation, to the console
    assert multiprocessing.active_children() == []
    assert [(r.rule_id, f"{r.session}", r.channel, r.status) for r in store.outbox.rows()] == \
        [("soft-cpi-rotation", "2024-07-11", "console", "sent")]
    out = capfd.readouterr().out
    assert out.count("soft-cpi-rotation") == 1, out
    assert [f"{r.session}" for r in store.runs_list(5) if r.status == "done"] == ["2024-07-11"]


def test_an_app_with_overrides_cannot_hand_its_job_to_a_child(store, config_dir, data_dir):
    harness = Harness(store, config_dir, data_dir, datetime(2024, 7, 12, 21, 0, tzinfo=ET))
    from bot.daemon.child import ChildJob
    with pytest.raises(ValueError, match="overrides runs its jobs in process"):
        ChildJob.of(harness.app)
