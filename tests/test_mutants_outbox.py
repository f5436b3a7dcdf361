"""Outbox store operations where `make mutate` found changes no test noticed: holding for quiet hours,
putting failed rows back (`outbox --retry`, which the other tests reach only through a child process),
the counts `status` shows, queueing, due rows, retries, recovery, and how a claim's holder is recorded and
judged gone (pid, pid space, start time). Each test here failed on a surviving mutant (README, "Tests").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

import bot.store.outbox as outbox_module
from bot.store.outbox import Holder, _exists, _space, _stat, gone, holder_of, this_process
from bot.store.store import stored_time
from tests.test_outbox import free_pid, proc_start
from tests.test_store import queued


def states(store) -> dict:
    return {r.rule_id: (r.status, r.attempts) for r in store.outbox.rows()}


def test_hold_moves_only_pending_rows_and_holding_nothing_moves_nothing(store):
    now, (a, b) = queued(store, "a", "b")
    later = now + timedelta(hours=9)
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    assert store.outbox.hold([], later) == 0
    assert store.outbox.hold([a, b], later) == 1  # b is being sent: it is not held
    rows = {r.rule_id: r for r in store.outbox.rows()}
    assert stored_time(rows["a"].next_attempt_at) == later
    assert stored_time(rows["b"].next_attempt_at) == now
    assert states(store) == {"a": ("pending", 0), "b": ("sending", 0)}


def test_requeue_puts_failed_rows_back_to_pending_due_now_with_fresh_attempts(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.retry(a, "sender", "refused", now + timedelta(days=1), failed=True)
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    store.outbox.retry(b, "sender", "timed out", now + timedelta(hours=1), failed=False)
    assert states(store) == {"a": ("failed", 1), "b": ("pending", 1), "c": ("pending", 0)}
    retry_at = now + timedelta(days=2)
    assert store.outbox.requeue_failed(retry_at) == 1
    assert states(store) == {"a": ("pending", 0), "b": ("pending", 1), "c": ("pending", 0)}
    rows = {r.rule_id: r for r in store.outbox.rows()}
    assert stored_time(rows["a"].next_attempt_at) == retry_at
    assert stored_time(rows["b"].next_attempt_at) == now + timedelta(hours=1)
    assert store.outbox.requeue_failed(retry_at) == 0


def test_counts_are_rows_per_status(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    assert store.outbox.counts() == {"pending": 3}
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.sent(a, now)
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    assert store.outbox.counts() == {"sent": 1, "sending": 1, "pending": 1}


def test_a_send_after_a_failed_attempt_is_recorded_whole_and_the_claim_cleared(store):
    now, (a,) = queued(store, "a")
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.retry(a, "sender", "timed out", now, failed=False)
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.sent(a, now + timedelta(minutes=1))
    [row] = store.outbox.rows()
    assert (row.status, row.attempts, row.last_error, row.owner, row.lease_until) == ("sent", 2, "", None, None)
    assert stored_time(row.sent_at) == now + timedelta(minutes=1)


def test_rows_are_listed_newest_first_up_to_the_limit_and_by_status(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    assert [r.rule_id for r in store.outbox.rows()] == ["c", "b", "a"]
    assert [r.rule_id for r in store.outbox.rows(limit=2)] == ["c", "b"]
    assert [r.rule_id for r in store.outbox.rows(["pending"])] == ["c", "a"]
    assert [r.rule_id for r in store.outbox.rows(["sending", "sent"])] == ["b"]


# -- queueing, due rows, retries, recovery -------------------------------------------------------------------

def test_queueing_nothing_adds_nothing(store):
    assert store.outbox.add([], datetime(2024, 7, 11, 21, 0, tzinfo=timezone.utc)) == 0
    assert store.outbox.rows() == []


def test_a_queued_row_starts_pending_due_now_with_no_attempt_and_no_error(store):
    """Attempts and the last error are what `outbox` lists for each row."""
    now, (a,) = queued(store, "a")
    [row] = store.outbox.rows()
    assert (row.status, row.attempts, row.last_error, row.owner) == ("pending", 0, "", None)
    assert stored_time(row.next_attempt_at) == now and stored_time(row.created_at) == now


def test_queueing_counts_only_the_rows_not_already_queued_for_rule_session_and_channel(store):
    now, _ = queued(store, "a")
    row = {"rule_id": "a", "session": date(2024, 7, 11), "channel": "console",
           "severity": "warning", "payload": "{}", "chart": None}
    again = [row, dict(row, rule_id="b"), dict(row, channel="email"), dict(row, session=now.date() - timedelta(1))]
    assert store.outbox.add(again, now) == 3
    assert store.outbox.add(again, now) == 0
    assert len(store.outbox.rows()) == 4


def backed_off(store, now, *rules):
    """Rows `rules` failed once and wait an hour; the others stay due now."""
    for row in store.outbox.rows():
        if row.rule_id in rules:
            store.outbox.claim([row.id], "sender", now + timedelta(minutes=10))
            store.outbox.retry(row.id, "sender", "timed out", now + timedelta(hours=1), failed=False)


def test_due_leaves_out_rows_backing_off_unless_told_to_ignore_the_backoff(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    backed_off(store, now, "b")
    assert [r.rule_id for r in store.outbox.due(now)] == ["a", "c"]
    assert [r.rule_id for r in store.outbox.due(now, ignore_backoff=True)] == ["a", "b", "c"]
    assert [r.rule_id for r in store.outbox.due(now + timedelta(hours=1))] == ["a", "b", "c"]
    assert [r.rule_id for r in store.outbox.due(now, limit=1, ignore_backoff=True)] == ["a"]


def test_a_retry_records_only_its_own_row_of_a_unit_and_only_for_the_claims_owner(store):
    now, (a, b) = queued(store, "a", "b")
    store.outbox.claim([a, b], "sender", now + timedelta(minutes=10))
    assert store.outbox.retry(a, "intruder", "no", now, failed=False) is False
    assert store.outbox.retry(a, "sender", "timed out", now + timedelta(hours=1), failed=False) is True
    assert {r.rule_id: (r.status, r.owner, r.attempts) for r in store.outbox.rows()} == \
        {"a": ("pending", None, 1), "b": ("sending", "sender", 0)}
    assert store.outbox.retry(a, "sender", "again", now, failed=True) is False  # no longer claimed
    assert store.outbox.retry(b, "sender", "refused", now, failed=True) is True
    assert {r.rule_id: (r.status, r.attempts, r.last_error) for r in store.outbox.rows()} == \
        {"a": ("pending", 1, "timed out"), "b": ("failed", 1, "refused")}


def dead_holder() -> Holder:
    """A holder on this host and pid space whose process ran and was reaped: certainly gone."""
    return replace(this_process(), pid=free_pid())


def claims(store) -> dict:
    return {r.rule_id: (r.status, r.owner, r.lease_until, r.owner_host, r.owner_pid, r.owner_space, r.owner_start)
            for r in store.outbox.rows()}


RELEASED = ("pending", None, None, None, None, None, None)  # as if never claimed (the schema: NULL unless "sending")


def test_recovering_with_no_claim_or_only_live_claims_in_their_lease_releases_nothing(store):
    now, (a, b) = queued(store, "a", "b")
    assert store.outbox.recover(now) == 0
    store.outbox.claim([a], "alive", now + timedelta(minutes=10))  # by this process, running
    before = claims(store)
    assert store.outbox.recover(now) == 0
    assert claims(store) == before


def test_recovery_releases_only_the_claims_of_a_gone_process_and_clears_them_whole(store):
    """A claim in its lease comes back at once when its process is gone; a live one's is left alone."""
    now, (a, b) = queued(store, "a", "b")
    store.outbox.claim([a], "dead", now + timedelta(minutes=10), holder=dead_holder())
    store.outbox.claim([b], "alive", now + timedelta(minutes=10))
    assert store.outbox.recover(now) == 1
    after = claims(store)
    assert after["a"] == RELEASED
    assert after["b"][:2] == ("sending", "alive")


def test_recovery_counts_expired_and_gone_claims_together(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    store.outbox.claim([a], "expired", now + timedelta(minutes=1))
    store.outbox.claim([b], "dead", now + timedelta(minutes=10), holder=dead_holder())
    store.outbox.claim([c], "alive", now + timedelta(minutes=10))
    assert store.outbox.recover(now + timedelta(minutes=5)) == 2
    after = claims(store)
    assert after["a"] == after["b"] == RELEASED and after["c"][:2] == ("sending", "alive")


# -- who holds a claim, and when it is certainly gone ---------------------------------------------------------

class FakeProc:
    """A /proc of our making: the boot id, this process's pid namespace and /proc/PID/stat files."""

    def __init__(self, root):
        self.root = root
        root.mkdir()

    def boot(self, boot_id="6f1c9a2e-boot"):
        (self.root / "sys" / "kernel" / "random").mkdir(parents=True, exist_ok=True)
        (self.root / "sys" / "kernel" / "random" / "boot_id").write_text(boot_id + "\n")

    def namespace(self, link="pid:[4026531836]"):
        (self.root / "self" / "ns").mkdir(parents=True, exist_ok=True)
        os.symlink(link, self.root / "self" / "ns" / "pid")

    def stat(self, pid, state="S", start=100, comm="python3"):
        fields = [state, *["0"] * 18, str(start), *["0"] * 30]
        (self.root / str(pid)).mkdir(exist_ok=True)
        (self.root / str(pid) / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    """/proc replaced for the outbox, and this process's holder worked out afresh from it."""
    monkeypatch.setattr(outbox_module, "PROC", tmp_path / "proc")
    monkeypatch.setattr(outbox_module, "_THIS", {})
    return FakeProc(tmp_path / "proc")


def test_on_linux_this_process_is_recorded_with_its_boot_pid_namespace_and_start_time(monkeypatch):
    monkeypatch.setattr(outbox_module, "_THIS", {})
    boot = open("/proc/sys/kernel/random/boot_id").read().strip()
    space = f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    assert _space() == space
    assert this_process() == Holder(socket.gethostname(), os.getpid(), space, proc_start(os.getpid()))


WHAT_PROC_TELLS = [
    # what /proc has                         -> the holder's space and start
    ("boot id, pid namespace, stat", "bns", ("6f1c9a2e-boot/pid:[4026531836]", 100)),
    ("no stat for this process", "bn", (None, None)),
    ("no boot id", "ns", (None, None)),
    ("no pid namespace", "bs", (None, None)),
    ("no /proc at all", "", (None, None)),
]


@pytest.mark.parametrize("has, recorded", [row[1:] for row in WHAT_PROC_TELLS], ids=[row[0] for row in WHAT_PROC_TELLS])
def test_a_holder_records_its_pid_space_and_start_time_both_or_neither(fake_proc, has, recorded):
    """Half a record would judge a claim by the other half: a start time without a space is compared across
    boots and containers. Without both, only "no such pid" counts as gone."""
    if "b" in has:
        fake_proc.boot()
    if "n" in has:
        fake_proc.namespace()
    if "s" in has:
        fake_proc.stat(os.getpid(), "R", 100)
    me = this_process()
    assert (me.host, me.pid) == (socket.gethostname(), os.getpid())
    assert (me.space, me.start) == recorded


def test_a_process_name_holding_parentheses_and_spaces_does_not_shift_the_stat_fields(fake_proc):
    fake_proc.stat(4242, "S", 777, comm="evil) Z 1 (2")
    assert _stat(4242) == ("S", 777)
    assert _stat(4243) is None


def linux_like(fake_proc) -> Holder:
    fake_proc.boot()
    fake_proc.namespace()
    fake_proc.stat(os.getpid(), "R", 100)
    return this_process()


JUDGED = [
    # the holder's pid in /proc: state, started   -> gone
    ("running", 4242, "R", "same", False),
    ("sleeping", 4242, "S", "same", False),
    ("in disk sleep", 4242, "D", "same", False),
    ("stopped", 4242, "T", "same", False),
    ("idle", 4242, "I", "same", False),
    ("a zombie", 4242, "Z", "same", True),
    ("dead", 4242, "X", "same", True),
    ("dead (old kernels)", 4242, "x", "same", True),
    ("reused by a process started later", 4242, "S", "later", True),
    ("pid 1 reused: a restarted container's first process", 1, "S", "later", True),
    ("pid 1, the same process", 1, "S", "same", False),
]


@pytest.mark.parametrize("pid, state, started, is_gone", [row[1:] for row in JUDGED], ids=[row[0] for row in JUDGED])
def test_a_holder_in_this_pid_space_is_gone_when_its_pid_is_a_zombie_dead_or_another_process(fake_proc, pid, state,
                                                                                            started, is_gone):
    me = linux_like(fake_proc)
    fake_proc.stat(pid, state, 500 if started == "same" else 501)
    assert gone(replace(me, pid=pid, start=500)) is is_gone


@pytest.mark.parametrize("elsewhere", [dict(host="elsewhere.example"), dict(space="other-boot/pid:[4026531836]"),
                                       dict(space="6f1c9a2e-boot/pid:[1]"), dict(space=None, start=None)],
                         ids=["host", "boot", "pid namespace", "recorded without /proc"])
def test_a_holder_from_another_host_boot_or_namespace_is_never_judged_gone(fake_proc, elsewhere):
    """Its pid here (a zombie) is another process."""
    me = linux_like(fake_proc)
    fake_proc.stat(4242, "Z", 500)
    assert gone(replace(me, **{"pid": 4242, "start": 500, **elsewhere})) is False


def test_no_holder_is_never_gone():
    assert gone(None) is False


@pytest.mark.parametrize("pid", [None, 0, -1], ids=["no pid", "pid 0", "negative pid"])
def test_a_holder_naming_no_real_pid_is_never_gone(pid):
    """To the kernel 0 and -1 name process groups, not a process."""
    assert gone(replace(this_process(), pid=pid, start=None)) is False


def test_asking_whether_a_process_exists_sends_it_no_signal():
    # SIGHUP's default (end the process) restored: under nohup the sleeper would inherit "ignore"
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    assert _exists(sleeper.pid) is True
    sleeper.terminate()  # a signal sent first (SIGHUP) would be the one that ended it
    assert sleeper.wait(timeout=10) == -signal.SIGTERM
    assert _exists(free_pid()) is False


def test_without_proc_only_a_free_pid_counts_as_gone(fake_proc):
    me = this_process()
    assert (me.space, me.start) == (None, None)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert gone(replace(me, pid=free_pid())) is True
        assert gone(replace(me, pid=sleeper.pid)) is False
    finally:
        sleeper.kill()
        sleeper.wait()


def test_another_users_process_exists_though_it_may_not_be_signalled():
    """EPERM: the kernel has the pid, so the process is alive (its claim keeps its lease). Root asks from a
    child turned `nobody` about its parent; anyone else asks about init, which is root's."""
    if os.geteuid() != 0:
        assert _exists(1) is True
        return
    child = os.fork()
    if child == 0:
        try:
            os.setuid(65534)
            os._exit(0 if _exists(os.getppid()) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("host, pid, holder", [
    (None, None, None),  # claimed before claims recorded a process
    ("box", None, None),
    (None, 4242, None),
    ("box", 4242, Holder("box", 4242, "boot/pid:[1]", 7)),
])
def test_a_claim_has_a_holder_only_when_it_recorded_both_host_and_pid(host, pid, holder):
    """`outbox` shows "claimed by HOST pid PID": never "pid None" nor "None pid 4242"."""
    row = SimpleNamespace(owner_host=host, owner_pid=pid, owner_space="boot/pid:[1]", owner_start=7)
    assert holder_of(row) == holder
