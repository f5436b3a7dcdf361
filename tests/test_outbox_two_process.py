"""Two senders, one outbox: a delivery one process has claimed is never sent by another while its lease holds.

Each test runs against the same SQLite file and, in its second parametrization,
the same PostgreSQL schema, from separate processes. The Telegram stand-in
holds its answer to a chosen sendMessage, so a sender is caught mid-send
without guessing at timings: the request is recorded on arrival, answered on
release().
"""

from __future__ import annotations

import collections
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta

import pytest

from bot.clock import SYSTEM
from bot.notify.alert import Alert
from bot.notify.delivery import deliver, enqueue
from bot.settings.models import Settings
from bot.store import Store
from bot.store.store import stored_time
from tests.conftest import ROOT, subprocess_env

SEND = """
import sys
from datetime import timedelta
from bot.notify.delivery import deliver
from bot.settings.load import load_settings
from bot.store import open_store
print(deliver(open_store(), load_settings(), lease=timedelta(seconds=float(sys.argv[1]))).line(), flush=True)
"""

SETTINGS = {"telegram_pace_seconds": 0, "grouping": False}


@pytest.fixture
def world(telegram, tmp_path, store_url, monkeypatch):
    """(store, env for child processes, script) with Telegram chat 1001 configured, here and in the children."""
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "config"
    config.mkdir()
    for name in ("series.yaml", "rules.yaml"):
        (config / name).write_text((ROOT / "config" / name).read_text())
    (config / "settings.yaml").write_text("notify:\n  telegram_pace_seconds: 0\n  grouping: false\n")
    script = tmp_path / "send.py"
    script.write_text(textwrap.dedent(SEND))
    if store_url.startswith("postgresql"):
        store = Store(store_url)
        env = subprocess_env(DATABASE_URL=store_url, CLOSEBELL_HOME=home, CLOSEBELL_CONFIG=config)
    else:
        store = Store(f"sqlite:///{home / 'closebell.db'}")
        env = subprocess_env(CLOSEBELL_HOME=home, CLOSEBELL_CONFIG=config)
    yield store, env, script
    store.close()


def queue(store, count):
    alerts = [Alert(rule_id=f"rule-{i:02d}", session=date(2024, 7, 11), severity="warning", title=f"t{i}",
                    text=f"alert {i}") for i in range(count)]
    assert enqueue(store, [(a, ["telegram"]) for a in alerts], Settings(notify=SETTINGS), now=SYSTEM.now()) == count


def wait_for_requests(telegram, count, process):
    """Until the stand-in has seen `count` sendMessage requests (the last one held, so its sender is mid-send)."""
    deadline = time.monotonic() + 90
    while len(telegram.sent("sendMessage")) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"the sender never made request {count}"
        time.sleep(0.02)


def texts(telegram) -> collections.Counter:
    return collections.Counter(call.fields["text"].split("\n")[-1] for call in telegram.messages())


def test_outbox_retry_beside_a_sender_mid_send_delivers_the_alert_exactly_once(world, telegram):
    store, env, script = world
    queue(store, 1)
    telegram.delay("sendMessage", 120)  # answered when released below
    sender = subprocess.Popen([sys.executable, str(script), "600"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_for_requests(telegram, 1, sender)
    [row] = store.outbox.rows()
    assert row.status == "sending" and row.owner.split(":")[1] == str(sender.pid)

    retry = subprocess.run([sys.executable, "-m", "bot", "outbox", "--retry"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert retry.returncode == 0, retry.stderr
    assert "delivery: 0 sent" in retry.stdout
    telegram.release()
    out, err = sender.communicate(timeout=60)
    assert sender.returncode == 0, err
    assert out.strip() == "1 sent"

    assert texts(telegram) == {"alert 0": 1}
    [row] = store.outbox.rows()
    assert (row.status, row.owner, row.lease_until) == ("sent", None, None)


def test_a_sender_killed_mid_send_is_taken_over_by_the_next_delivery_at_once(world, telegram):
    """Its process is gone (same host): its claim goes back at once, long before the lease would run out."""
    store, env, script = world
    queue(store, 5)
    for seconds in (0, 0, 120):  # the third message is held: its sender is killed while waiting for the answer
        telegram.delay("sendMessage", seconds)
    first = subprocess.Popen([sys.executable, str(script), "600"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wait_for_requests(telegram, 3, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    telegram.release()
    by_rule = {r.rule_id: r for r in store.outbox.rows()}
    assert [by_rule[f"rule-{i:02d}"].status for i in range(5)] == ["sent", "sent", "sending", "pending", "pending"]
    claim = by_rule["rule-02"]
    assert (claim.owner_pid, claim.owner_host) == (first.pid, socket.gethostname())
    assert stored_time(claim.lease_until) > SYSTEM.now() + timedelta(minutes=9)  # the lease alone would wait

    assert deliver(store, Settings(notify=SETTINGS)).sent == 3
    # The claimed alert may have reached Telegram before the kill: sent again, once (at least once, never lost).
    assert texts(telegram) == {"alert 0": 1, "alert 1": 1, "alert 2": 2, "alert 3": 1, "alert 4": 1}
    assert {(r.status, r.owner, r.owner_pid) for r in store.outbox.rows()} == {("sent", None, None)}

