"""A storm of SIGKILLs on `check --send`: every alert delivered, nothing left claimed, a duplicate only per kill
that landed mid-send.

Real processes against a real store and the Telegram stand-in, which answers
every sendMessage after a delay, so a kill often lands while a message is on
the wire. Each killed check is run again at once, then `outbox --retry`, as a
platform restarting the bot and a user poking it would. A check is killed
right after it claimed a row (seen in the store: a row "sending" under its
pid), after a varying pause, so kills land before, during and after sends.
Three lanes run at once (each with its own sessions), so a takeover must also
leave alone the claims of processes that are still running.

Counted at the stand-in: the alerts of every session checked (rule x session)
arrive at least once, and the extra arrivals are at most the kills that left a
row claimed (the message may have gone out before the kill; the Bot API has no
idempotency key). Before claims named their process, the rows the killed
checks held stayed "sending" until their ten-minute lease ran out.
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from bot.store import Store
from tests.conftest import ROOT, subprocess_env

RULES = 4  # alerts per check: one per rule, each one Telegram message
LANES = 3
KILLS_PER_LANE = 10
DELAY = 0.1  # seconds the stand-in holds every sendMessage answer
PAUSES = (0.0, 0.05, 0.15)  # after the victim's first claim is seen: in flight, maybe answered, a later unit
SENT = re.compile(r"(\d{4}-\d{2}-\d{2}) · ([\w-]+) ·")


def config_dir(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "series.yaml").write_text((ROOT / "config" / "series.yaml").read_text())
    rules = "".join(f"  - id: storm-{i}\n    title: storm {i}\n    when: SPY > 0\n    cooldown: 0\n"
                    f"    message: storm {i}\n" for i in range(RULES))
    (config / "rules.yaml").write_text(f"rules:\n{rules}")
    (config / "settings.yaml").write_text("notify:\n  default: [telegram]\n  admin: console\n  charts: false\n"
                                          "  grouping: false\n  telegram_pace_seconds: 0\n")
    return config


def sessions(data_dir, count):
    """The last `count` trading days before 2024-07-12 in the shipped history."""
    days = [line.split(",")[0] for line in (data_dir / "SPY.csv").read_text().splitlines()[1:]]
    return [d for d in days if d < "2024-07-12"][-count:]


@pytest.fixture(params=["sqlite", "postgresql"])
def storm_store(request, tmp_path):
    """(url for this process, env for the children) of one store: a SQLite file, or a PostgreSQL schema."""
    home = tmp_path / "home"
    home.mkdir()
    if request.param == "sqlite":
        return f"sqlite:///{home / 'closebell.db'}", {"CLOSEBELL_HOME": home}
    url = request.getfixturevalue("pg_url")
    return url, {"CLOSEBELL_HOME": home, "DATABASE_URL": url}


@pytest.mark.timeout(300)
def test_a_kill_storm_on_check_send_leaves_nothing_undelivered_or_claimed(telegram, tmp_path, data_dir,
                                                                          storm_store):
    url, store_env = storm_store
    store = Store(url)  # created (migrated) here, before the children race to
    env = subprocess_env(CLOSEBELL_CONFIG=config_dir(tmp_path), TELEGRAM_CHAT_IDS="1001", **store_env)
    for _ in range(5000):
        telegram.delay("sendMessage", DELAY)
    pool = sessions(data_dir, LANES * KILLS_PER_LANE * 2)
    lock = threading.Lock()
    tally = collections.Counter()  # kills, mid-send kills, rows they left claimed, sessions checked
    checked: list[str] = []
    problems: list[str] = []

    def bot(*args, timeout=120):
        done = subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            with lock:
                problems.append(f"{' '.join(args)}: exit {done.returncode}: {done.stderr[-500:]}")

    def claimed_by(pid):
        return [r for r in store.outbox_rows(["sending"]) if r.owner_pid == pid]

    def lane(number):
        days = pool[number::LANES]
        kills = 0
        for attempt, day in enumerate(days):
            if kills == KILLS_PER_LANE:
                break
            with lock:
                checked.append(day)
            check = ["check", "--data-dir", str(data_dir), "--date", day, "--send"]
            victim = subprocess.Popen([sys.executable, "-m", "bot", *check], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 90
            while victim.poll() is None and not claimed_by(victim.pid) and time.monotonic() < deadline:
                time.sleep(0.005)
            if victim.poll() is None:  # else another lane sent this session's alerts first: no kill this time
                time.sleep(PAUSES[attempt % len(PAUSES)])
                victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            if victim.returncode == -signal.SIGKILL:
                kills += 1
                stranded = len(claimed_by(victim.pid))  # claimed, not recorded: maybe sent, not known to be
                with lock:
                    tally["kills"] += 1
                    tally["mid-send kills"] += bool(stranded)
                    tally["rows left claimed"] += stranded
            bot(*check)  # the killed check, run again at once
            bot("outbox", "--retry")

    started = time.monotonic()
    lanes = [threading.Thread(target=lane, args=(n,)) for n in range(LANES)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    seconds = time.monotonic() - started

    arrived = collections.Counter(SENT.search(call.fields["text"]).groups() for call in telegram.sent("sendMessage"))
    wanted = {(day, f"storm-{i}") for day in checked for i in range(RULES)}
    undelivered = wanted - set(arrived)
    duplicates = sum(n - 1 for n in arrived.values())
    counts = store.outbox_counts()
    print(f"\nkill storm ({url.split(':')[0]}): {tally['kills']} SIGKILLs, {tally['mid-send kills']} mid-send "
          f"({tally['rows left claimed']} row(s) left claimed); {len(wanted)} alerts, {len(undelivered)} undelivered, "
          f"{duplicates} duplicate(s), {counts.get('sending', 0)} left sending; outbox {dict(counts)}; "
          f"{seconds:.0f} s")
    store.close()
    assert problems == []
    assert tally["kills"] == LANES * KILLS_PER_LANE
    assert sorted(undelivered) == []
    assert counts.get("sending", 0) == 0 and set(counts) == {"sent"}
    assert set(arrived) == wanted
    assert duplicates <= tally["mid-send kills"]
