"""High availability against the real PostgreSQL: database faults made with the server's own tools.

Two `run` instances share one database and its advisory lock. Each test makes
one fault the way an operator (or a chaos tester) would, with
`pg_terminate_backend` on backends found through pg_locks and
pg_stat_activity (the bot names its connections: `closebell HOST:PID`, and the
lock's `closebell-leader|standby HOST:PID@SINCE`), or a role refused login so
the store stays gone. Sends are counted at Telegram stand-ins, one per
instance where two run, so a send by the old leader is visible as such.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from bot.app import App
from bot.clock import ET
from bot.notify.alert import Alert
from bot.store import Store
from bot.store.lock import ADVISORY_KEY, InstanceLock, instances
from bot.store.store import database_url
from tests.conftest import ROOT, postgres_url, subprocess_env, wait_for
from tests.telegram_stub import TelegramStub
from tests.apps import offline_config
from tests.test_daemon import Harness

HOLDER = sa.text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                 "AND objid::bigint = :k AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


@pytest.fixture
def admin():
    """A connection of the test's own (no application_name of the bot's) to terminate and inspect backends."""
    engine = sa.create_engine(database_url(postgres_url()), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def holder(admin) -> int | None:
    with admin.connect() as conn:
        return conn.execute(HOLDER, {"k": ADVISORY_KEY}).scalar()


def terminate(admin, where: str, **params) -> list[int]:
    """pg_terminate_backend on every backend of this database matching `where` (over pg_stat_activity a).

    The call sits in the select list, so it runs for the matching rows only (in WHERE the planner may call
    it before the other conditions)."""
    with admin.connect() as conn:
        return [pid for pid, ended in conn.execute(sa.text(
            "SELECT a.pid, pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.datname = current_database() "
            f"AND a.pid <> pg_backend_pid() AND ({where})"), params) if ended]


def of_process(pid: int) -> dict:
    """The backends whose client is process `pid`: its TCP connections' local ports (from /proc), matched
    with pg_stat_activity.client_port. Every connection of that process, whatever it calls itself."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return {"where": "a.client_port = ANY(:ports)", "ports": ports}


def queue(store: Store, count: int, channel: str = "telegram:1001") -> list[str]:
    """`count` alerts pending in the outbox for `channel`, as the session job leaves them; their rule ids."""
    ids = [f"ha-{i}" for i in range(count)]
    rows = [{"rule_id": rule, "session": date(2024, 7, 11), "channel": channel, "severity": "warning",
             "payload": Alert(rule_id=rule, session=date(2024, 7, 11), severity="warning", title=f"HA {rule}",
                              text=f"alert {rule}").to_json(), "chart": None} for rule in ids]
    assert store.outbox.add(rows, datetime.now(timezone.utc)) == count
    return ids


def rules_sent(stub) -> list[str]:
    """The rule of each alert message the stand-in received (titles are `HA <rule>`; notices left out)."""
    found = [re.search(r"HA (ha-\d+)", call.fields["text"]) for call in stub.messages()]
    return [match.group(1) for match in found if match]


def statuses(store: Store) -> dict[str, int]:
    return store.outbox.counts()


class Run:
    """`closebell run` in a process of its own, its log read on a thread as it comes."""

    def __init__(self, config, home, pg_url, stub: TelegramStub, *extra):
        env = subprocess_env(CLOSEBELL_HOME=home, CLOSEBELL_CONFIG=config, DATABASE_URL=pg_url,
                             TELEGRAM_BOT_TOKEN=stub.token, TELEGRAM_CHAT_IDS="1001", TELEGRAM_BASE_URL=stub.url)
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", *extra], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def saw(self, text: str, seconds: float = 30) -> bool:
        return wait_for(lambda: text in self.log, seconds)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return code


def ha_config(tmp_path, data_dir, name: str, retry: int, pace: float = 0.0):
    """The offline configuration (every series from the shipped CSV files), Telegram the admin channel."""
    (tmp_path / name).mkdir()
    config = offline_config(tmp_path / name, data_dir)
    (config / "settings.yaml").write_text(
        f"sources:\n  csv: {{base_url: '{data_dir}'}}\n"
        f"notify:\n  charts: false\n  grouping: false\n  telegram_pace_seconds: {pace}\n"
        f"schedule:\n  standby_retry_seconds: {retry}\n")
    return config


def mark_latest_done(store: Store):
    """The latest session's run is done: a start has nothing to catch up, so only what is pending is sent."""
    from bot.app.schedule import sessions_due
    for session in sessions_due(datetime.now(ET), 30, limit=1):
        store.run_started(session.date(), datetime.now(ET), False)
        store.run_finished(session.date(), datetime.now(ET), "done")


@pytest.fixture
def stubs():
    made = []

    def make():
        made.append(TelegramStub().start())
        return made[-1]
    yield make
    for stub in made:
        stub.stop()


# -- 1. the connection dies while `check --send` delivers --------------------------------------------------

FOUR_RULES = "rules:\n" + "".join(f"""  - id: ha-{i}
    title: HA ha-{i}
    when: pct_change(IWM, 1) > -100
    notify: [telegram]
""" for i in range(4))


def check_config(tmp_path):
    config = tmp_path / "check-config"
    config.mkdir(parents=True)
    (config / "series.yaml").write_text((ROOT / "config" / "series.yaml").read_text())
    (config / "rules.yaml").write_text(FOUR_RULES)
    (config / "settings.yaml").write_text("notify:\n  charts: false\n  grouping: false\n  telegram_pace_seconds: 0\n")
    return config


def check_send(config, home, url, stub, data_dir):
    env = subprocess_env(CLOSEBELL_HOME=home, CLOSEBELL_CONFIG=config, DATABASE_URL=url,
                         TELEGRAM_BOT_TOKEN=stub.token, TELEGRAM_CHAT_IDS="1001", TELEGRAM_BASE_URL=stub.url)
    return subprocess.Popen([sys.executable, "-m", "bot", "check", "--send", "--date", "2024-07-11", "--data-dir",
                             str(data_dir)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def hold_the_second_send(stub):
    stub.delay("sendMessage", 0)
    stub.delay("sendMessage", 30)  # held until release(): the test acts while it is on the wire


def test_connections_terminated_mid_send_the_send_is_recorded_once_and_never_sent_again(
        tmp_path, pg_url, data_dir, admin, stubs, monkeypatch):
    stub = stubs()
    hold_the_second_send(stub)
    proc = check_send(check_config(tmp_path), tmp_path / "home", pg_url, stub, data_dir)
    assert wait_for(lambda: len(stub.messages()) == 2, 60), proc.communicate()[1] if proc.poll() is not None else ""
    assert terminate(admin, **of_process(proc.pid))  # every connection of the check, the pooled ones too
    stub.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "delivery: 4 sent" in err and "Traceback" not in err, err
    store = Store(pg_url)
    assert statuses(store) == {"sent": 4}
    for name, value in {"TELEGRAM_BOT_TOKEN": stub.token, "TELEGRAM_CHAT_IDS": "1001",
                        "TELEGRAM_BASE_URL": stub.url}.items():
        monkeypatch.setenv(name, value)
    assert App.open(check_config(tmp_path / "again"), store=store).retry_deliveries().report.sent == 0
    assert sorted(rules_sent(stub)) == ["ha-0", "ha-1", "ha-2", "ha-3"]  # each exactly once


@pytest.fixture
def role_url(pg_url, admin):
    """`pg_url` as a login role of its own, so the test can refuse it login: a store that stays gone."""
    role = f"ha_{uuid.uuid4().hex[:10]}"
    url = sa.engine.make_url(pg_url)
    schema = url.query["options"].split("=", 1)[1]
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"'))
    yield role, url.set(username=role).render_as_string(hide_password=False)
    with admin.connect() as conn:
        terminate(admin, "a.usename = :role", role=role)
        conn.execute(sa.text(f'DROP OWNED BY "{role}" CASCADE'))
        conn.execute(sa.text(f'DROP ROLE "{role}"'))


def test_a_store_that_stays_gone_keeps_the_send_in_a_journal_exit_4_and_the_next_start_records_it(
        tmp_path, role_url, data_dir, admin, stubs):
    role, url = role_url
    Store(url).close()  # the schema, owned by the role
    stub = stubs()
    hold_the_second_send(stub)
    config, home = check_config(tmp_path), tmp_path / "home"
    proc = check_send(config, home, url, stub, data_dir)
    assert wait_for(lambda: len(stub.messages()) == 2, 60)
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER ROLE "{role}" NOLOGIN'))
    assert terminate(admin, "a.usename = :role", role=role)
    stub.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    journals = list(home.glob("unrecorded-sends-*.jsonl"))
    assert f"delivery: 1 sent, 1 sent but not recorded: kept in {journals[0]}, will be recorded on the next start" \
        in err
    assert "Traceback" not in err and len(stub.messages()) == 2
    assert [json.loads(line)["rule"] for line in journals[0].read_text().splitlines()] == ["ha-1"]

    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER ROLE "{role}" LOGIN'))
    again = check_send(config, home, url, stub, data_dir)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "delivery: 2 sent" in err  # ha-2 and ha-3; ha-1 was recorded from the journal, not sent again
    assert sorted(rules_sent(stub)) == ["ha-0", "ha-1", "ha-2", "ha-3"]
    assert statuses(Store(url)) == {"sent": 4}
    assert journals[0].read_text() == ""


# -- 2. only the lock's connection is terminated, a second instance takes over at once ----------------------

def test_a_leader_whose_lock_is_terminated_stops_sending_at_once_and_stands_by(tmp_path, pg_url, data_dir, admin,
                                                                              stubs):
    store = Store(pg_url)  # the latest session is due: its job (in a child process) delivers too, fenced alike
    ids = queue(store, 8)
    stub_a, stub_b = stubs(), stubs()
    for seconds in (0, 0, 25):
        stub_a.delay("sendMessage", seconds)  # the third is held on the wire until release()
    # the old leader watches its lock every 5 s, the standby tries every second: the fence, not the watch,
    # must stop the old leader's sends
    leader = Run(ha_config(tmp_path, data_dir, "a", retry=5, pace=0.2), tmp_path / "a", pg_url, stub_a)
    standby = None
    try:
        assert wait_for(lambda: len(rules_sent(stub_a)) == 3, 60), leader.log
        standby = Run(ha_config(tmp_path, data_dir, "b", retry=1), tmp_path / "b", pg_url, stub_b)
        assert standby.saw("standing by"), standby.log
        old = holder(admin)
        assert terminate(admin, "a.pid = :pid", pid=old) == [old]  # the lock's connection only
        assert wait_for(lambda: holder(admin) not in (None, old), 10), standby.log
        taken_over = time.time()
        stub_a.release()  # the send that was on the wire when the lock went completes; nothing after it
        assert standby.saw("took over as the active instance", 10), standby.log
        assert wait_for(lambda: len(rules_sent(stub_a)) + len(rules_sent(stub_b)) >= 8, 15), leader.log
        time.sleep(1.0)  # the old leader's pace is 0.2 s: a send it still made would be here by now
        assert [c.fields["text"][:40] for c in stub_a.messages() if c.at > taken_over] == []
        assert sorted(rules_sent(stub_a) + rules_sent(stub_b)) == sorted(ids)  # each exactly once
        assert leader.saw("another instance holds it now: standing by", 15), leader.log
        assert leader.proc.poll() is None  # standing by, not gone
    finally:
        stub_a.release()
        codes = [leader.stop()] + ([standby.stop()] if standby else [])
    assert codes == [0, 0], leader.log
    assert "Traceback" not in leader.log + standby.log
    assert set(statuses(store)) == {"sent"}  # nothing left pending or sending


# -- 3. every connection of the leader is terminated --------------------------------------------------------

def test_a_leader_whose_every_connection_is_terminated_reconnects_and_resumes_without_a_traceback(
        tmp_path, pg_url, data_dir, admin, stubs):
    store = Store(pg_url)
    mark_latest_done(store)
    leader = Run(ha_config(tmp_path, data_dir, "a", retry=1), tmp_path / "a", pg_url, stubs())
    try:
        assert leader.saw("running; next job for"), leader.log
        first = holder(admin)
        assert len(terminate(admin, **of_process(leader.proc.pid))) >= 1
        assert leader.saw("reconnected and resumed as the active instance", 15), leader.log
        assert wait_for(lambda: holder(admin) not in (None, first), 5)
        assert leader.proc.poll() is None
    finally:
        code = leader.stop()
    assert code == 0, leader.log
    assert "Traceback" not in leader.log and "Error" not in leader.log.replace("StoreError", ""), leader.log


# -- 4 and 5. a standby takes over and sends at once; status names the leader and the standby ---------------

def status_lines_of(store: Store, config) -> list[str]:
    """The same lines from the app in this process (a second interpreter costs seconds)."""
    from bot.render.status import status_lines
    return status_lines(App.open(config, store=store).status())


def test_a_standby_that_takes_over_delivers_what_is_pending_at_once_and_status_names_both(
        tmp_path, pg_url, data_dir, stubs):
    store = Store(pg_url)
    mark_latest_done(store)  # nothing to catch up: only the pending alerts are there to send
    config_a = ha_config(tmp_path, data_dir, "a", retry=1)
    nobody = status_lines_of(store, config_a)
    stub_a, stub_b = stubs(), stubs()
    leader = Run(config_a, tmp_path / "a", pg_url, stub_a)
    standby = None
    try:
        assert leader.saw("running; next job for"), leader.log
        standby = Run(ha_config(tmp_path, data_dir, "b", retry=1), tmp_path / "b", pg_url, stub_b)
        assert standby.saw("standing by"), standby.log
        both = status_lines_of(store, config_a)
        ids = queue(store, 3)
        leader.proc.kill()
        leader.proc.wait()
        assert standby.saw("took over as the active instance", 10), standby.log
        taken_over = time.monotonic()
        assert wait_for(lambda: len(rules_sent(stub_b)) == 3, 10), standby.log
        assert time.monotonic() - taken_over < 5  # at once, not at the first one-minute tick
        assert sorted(rules_sent(stub_b)) == ids and stub_a.messages() == []
        assert "  leader: none (no `closebell run` holds the lock)" in nobody
        host = socket.gethostname()
        after_store = both[both.index(next(line for line in both if line.startswith("store:"))) + 1:]
        assert after_store[0].startswith(f"  leader: {host} pid {leader.proc.pid} since "), both
        assert after_store[1].startswith(f"  standby: {host} pid {standby.proc.pid} since "), both
        status = "\n".join(status_lines_of(store, config_a))
        assert f"  leader: {host} pid {standby.proc.pid} since " in status and "standby:" not in status, status
    finally:
        leader.stop()
        code = standby.stop() if standby else None
    assert code == 0, standby.log


# -- 6. issue 16: the connection dies between the session's evaluation and its delivery -------------------

def test_connections_terminated_between_evaluation_and_delivery_the_session_is_done_and_sent_once(
        tmp_path, pg_url, data_dir, admin):
    from tests.conftest import copy_config
    fixtures = set(of_process(os.getpid())["ports"])  # the test's own connections (the schema's fixture)
    store = Store(pg_url)
    harness = Harness(store, copy_config(tmp_path), data_dir, datetime(2024, 7, 11, 21, 0, tzinfo=ET))
    deliver = harness.app.deliver_due
    killed = []

    def terminate_then_deliver(*args, **kwargs):
        if not killed:  # the session is evaluated and its alerts are queued: now the database drops us
            ports = [port for port in of_process(os.getpid())["ports"] if port not in fixtures]
            killed.extend(terminate(admin, "a.client_port = ANY(:ports)", ports=ports))
        return deliver(*args, **kwargs)
    harness.app.deliver_due = terminate_then_deliver
    outcome = harness.daemon.process(pd.Timestamp("2024-07-11"))
    assert killed, "no connection of the session's store was terminated"
    assert outcome.status == "done", outcome.line()
    assert [(f"{r.session}", r.status) for r in store.runs_list(5)] == [("2024-07-11", "done")]
    assert "delivery: 1 sent" in outcome.line() or outcome.delivery.sent >= 1
    sent = [line for line in harness.lines() if "soft-cpi-rotation" in line]
    assert len(sent) == 1, harness.lines()
    harness.app.deliver_due()
    assert len([line for line in harness.lines() if "soft-cpi-rotation" in line]) == 1
    assert statuses(store).get("sending", 0) == 0 and statuses(store).get("pending", 0) == 0


# -- the journal itself ---------------------------------------------------------------------------------------

def test_the_journal_records_each_kept_send_once_skips_a_line_cut_by_a_crash_and_empties(pg_url, tmp_path):
    from datetime import timedelta
    from bot.store.journal import SendJournal
    store = Store(pg_url)
    queue(store, 2)
    now = datetime.now(timezone.utc)
    rows = store.outbox.claim([r.id for r in store.outbox.due(now)], "gone:1:x", now + timedelta(minutes=10))
    journal = SendJournal.of(store)
    assert journal.path.parent == tmp_path / "home" and not journal.pending()
    journal.append(rows[0], now)
    with open(journal.path, "a") as handle:
        handle.write('{"id": %d, "sent_at": "2026-' % rows[1].id)  # the process died mid-write
    assert journal.replay(store) == 1
    assert sorted((r.rule_id, r.status) for r in store.outbox.rows()) == [("ha-0", "sent"), ("ha-1", "sending")]
    assert journal.path.read_text() == "" and journal.replay(store) == 0
    assert SendJournal.of(Store(f"sqlite:///{tmp_path / 'other.db'}")).path != journal.path  # one file per store


def test_a_long_host_name_is_cut_so_status_still_reads_when_the_leader_took_over(pg_url, monkeypatch):
    """PostgreSQL keeps 63 bytes of application_name; the lock appends `@SINCE` to it on the server. A pod
    name of 60 characters is cut to leave room for it, never the time `status` reads back."""
    monkeypatch.setattr(socket, "gethostname", lambda: "closebell-deployment-5d9f8b7c6d-" + "x" * 27)
    store = Store(pg_url)
    lock = InstanceLock(store)
    assert lock.acquire()
    try:
        (leader,) = [i for i in instances(store) if i.pid == os.getpid()]
        assert leader.role == "leader" and leader.host.startswith("closebell-deployment-")
        assert leader.since is not None and abs((datetime.now(timezone.utc) - leader.since).total_seconds()) < 60
    finally:
        lock.release()
