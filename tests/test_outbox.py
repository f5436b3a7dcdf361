"""The outbox: stored before sending, delivered once, retried with backoff, never silently dropped."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta

import pytest


from bot.clock import ET, SYSTEM, SimulatedClock
from bot.notify.alert import Alert
from bot.notify.base import Delivery
from bot.notify.email import Notifier as EmailNotifier
from bot.notify.delivery import backoff, deliver, enqueue, units_of
from bot.settings.models import Settings
from bot.store.outbox import Holder, this_process
from bot.store.store import stored_time
from tests.conftest import ROOT, sqlite_outbox_counts, subprocess_env, wait_for


def settings(**notify):
    base = {"telegram_pace_seconds": 0, "retry_base_seconds": 60, "max_attempts": 3}
    return Settings(notify={**base, **notify})


def alert(rule="r1", day=date(2024, 7, 11), severity="warning"):
    return Alert(rule_id=rule, session=day, severity=severity, title=f"title {rule}", text=f"text {rule}")


class Recorder:
    """A notifier double for outbox logic: records what it was asked to send, answers as scripted."""

    def __init__(self, answers=None):
        self.sent = []
        self.answers = list(answers or [])

    def recipients(self):
        return [""]

    def send(self, recipient, alerts, charts, report):
        for i, a in enumerate(alerts):
            answer = self.answers.pop(0) if self.answers else Delivery(True)
            if answer.ok:
                self.sent.append((recipient, a.rule_id, a.session))
            report(i, answer)


def test_the_same_alert_is_queued_once_however_often_the_session_is_evaluated(store):
    s = settings(default=["console"])
    assert enqueue(store, [(alert(), None)], s, now=SYSTEM.now()) == 1
    assert enqueue(store, [(alert(), None)], s, now=SYSTEM.now()) == 0
    assert enqueue(store, [(alert(), ["console"])], s, now=SYSTEM.now()) == 0


def test_a_delivered_alert_is_never_delivered_again(store):
    s = settings(default=["console"])
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    console = Recorder()
    assert deliver(store, s, notifiers={"console": console}).sent == 1
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())  # a retry, a catch-up, a manual check --send
    assert deliver(store, s, notifiers={"console": console}).sent == 0
    assert len(console.sent) == 1


def test_a_failed_send_is_retried_with_exponential_backoff_then_marked_failed(store):
    s = settings(default=["console"], max_attempts=3)
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    flaky = Recorder([Delivery(False, "boom")] * 3)
    clock = SimulatedClock(SYSTEM.now())
    assert deliver(store, s, clock=clock, notifiers={"console": flaky}).retrying == 1
    clock.advance(timedelta(seconds=30))
    assert deliver(store, s, clock=clock, notifiers={"console": flaky}).sent == 0  # not due
    clock.advance(timedelta(seconds=31))
    assert deliver(store, s, clock=clock, notifiers={"console": flaky}).retrying == 1
    clock.advance(timedelta(seconds=121))
    report = deliver(store, s, clock=clock, notifiers={"console": flaky})
    assert len(report.failed) == 1
    [row] = store.outbox.rows(["failed"])
    assert row.attempts == 3 and row.last_error == "boom"


def test_backoff_doubles_and_is_capped():
    assert [backoff(n, 60).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert backoff(30, 60) == timedelta(hours=2)


def test_a_permanent_failure_stops_retrying_and_tells_the_admin(store, telegram):
    s = settings(default=["console"], admin="telegram")
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    refused = Recorder([Delivery(False, "auth refused", permanent=True)])
    report = deliver(store, s, notifiers={"console": refused})
    assert len(report.failed) == 1
    notices = [r for r in store.outbox.rows(["pending"]) if r.rule_id.startswith("notice:")]
    assert {r.channel for r in notices} == {"telegram:1001", "telegram:1002"}
    deliver(store, s)
    texts = [c.fields["text"] for c in telegram.sent("sendMessage")]
    assert len(texts) == 2 and "could not deliver r1" in texts[0]


def test_one_failing_channel_never_blocks_another(store, telegram, smtp):
    s = settings(default=["telegram", "email"])
    telegram.fail("getMe", 500, "Internal Server Error")
    telegram.fail("getMe", 500, "Internal Server Error")
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    report = deliver(store, s)
    assert report.sent == 1 and report.retrying == 2  # email delivered; both telegram chats to retry
    assert len(smtp.envelopes) == 1


def test_an_unconfigured_channel_falls_back_to_the_console(store):
    s = settings(default=["telegram"])
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    assert [r.channel for r in store.outbox.rows(["pending"])] == ["console"]


def test_severity_routing_picks_channels_when_a_rule_names_none(store, telegram, smtp):
    s = settings(by_severity={"critical": ["telegram", "email"], "info": ["email"]}, default=["console"])
    enqueue(store, [(alert("a", severity="critical"), None), (alert("b", severity="info"), None),
                    (alert("c", severity="warning"), None), (alert("d", severity="info"), ["console"])], s,
            now=SYSTEM.now())
    channels = {(r.rule_id, r.channel) for r in store.outbox.rows(["pending"])}
    assert channels == {("a", "telegram:1001"), ("a", "telegram:1002"), ("a", "email"), ("b", "email"),
                        ("c", "console"), ("d", "console")}


def test_email_gets_one_summary_per_delivery_run(store, smtp):
    s = settings(default=["email"])
    enqueue(store, [(alert("a"), None), (alert("b", severity="critical"), None)], s, now=SYSTEM.now())
    assert deliver(store, s).sent == 2
    [message] = smtp.messages()
    assert message["Subject"].startswith("Closebell: 2 alerts for 2024-07-11, critical")


def cli_env(store_url, tmp_path, **extra):
    """Environment for a `python -m bot` child that opens the same store as `store_url`."""
    if store_url.startswith("postgresql"):
        return subprocess_env(DATABASE_URL=store_url, CLOSEBELL_HOME=tmp_path / "home", **extra)
    return subprocess_env(CLOSEBELL_HOME=tmp_path / "home", **extra)


def cli_store(store_url, tmp_path):
    from bot.store import Store
    if store_url.startswith("postgresql"):
        return Store(store_url)
    (tmp_path / "home").mkdir(exist_ok=True)
    return Store(f"sqlite:///{tmp_path / 'home' / 'closebell.db'}")


def test_outbox_command_lists_failed_and_retry_sends_them(store_url, tmp_path):
    store = cli_store(store_url, tmp_path)
    s = settings(default=["console"], max_attempts=1)
    enqueue(store, [(alert("stuck"), None)], s, now=SYSTEM.now())
    deliver(store, s, notifiers={"console": Recorder([Delivery(False, "SMTP 451", permanent=False)])})
    env = cli_env(store_url, tmp_path)
    listing = subprocess.run([sys.executable, "-m", "bot", "outbox"], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=60)
    assert "failed" in listing.stdout and "stuck" in listing.stdout and "SMTP 451" in listing.stdout
    retry = subprocess.run([sys.executable, "-m", "bot", "outbox", "--retry"], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60)
    assert retry.returncode == 0, retry.stderr
    assert "2024-07-11 stuck [warning]" in retry.stdout and "1 sent" in retry.stdout


QUEUE_AND_SEND = """
import sys
from datetime import date
from bot.clock import SYSTEM
from bot.notify.alert import Alert
from bot.notify.delivery import deliver, enqueue
from bot.settings.load import load_settings
from bot.store import open_store
store = open_store()
settings = load_settings()
if sys.argv[1] == "queue":
    alerts = [Alert(rule_id=f"rule-{i:02d}", session=date(2024, 7, 11), severity="warning", title=f"t{i}",
                    text=f"alert {i}") for i in range(12)]
    enqueue(store, [(a, ["telegram"]) for a in alerts], settings, now=SYSTEM.now())
print(deliver(store, settings).line(), flush=True)
"""


def test_a_kill_mid_batch_then_restart_delivers_every_alert_exactly_once(telegram, tmp_path, store_url):
    config = tmp_path / "config"
    config.mkdir()
    (config / "series.yaml").write_text((ROOT / "config" / "series.yaml").read_text())
    (config / "settings.yaml").write_text("notify:\n  telegram_pace_seconds: 0.25\n  grouping: false\n")
    script = tmp_path / "send.py"
    script.write_text(textwrap.dedent(QUEUE_AND_SEND))
    env = cli_env(store_url, tmp_path, CLOSEBELL_CONFIG=config, TELEGRAM_CHAT_IDS="1001")
    first = subprocess.Popen([sys.executable, str(script), "queue"], env=env, cwd=ROOT, stdout=subprocess.PIPE)
    # Kill once the 4th delivery is recorded as sent, inside the pause before the next message. (A kill
    # between Telegram accepting a message and that record would resend that one alert: the Bot API has
    # no idempotency key; the README says so.)
    watcher = cli_store(store_url, tmp_path) if store_url.startswith("postgresql") else None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = (watcher.outbox.counts() if watcher else sqlite_outbox_counts(tmp_path / "home" / "closebell.db"))
        if counts.get("sent", 0) >= 4:
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    delivered_before = len(telegram.messages())
    assert 4 <= delivered_before < 12
    second = subprocess.run([sys.executable, str(script), "resume"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    texts = sorted(c.fields["text"].split("\n")[-1] for c in telegram.messages())
    assert texts == sorted(f"alert {i}" for i in range(12))


def test_check_send_delivers_a_firing_with_its_chart_once_to_telegram_and_email(telegram, smtp, tmp_path, data_dir,
                                                                               monkeypatch, capsys):
    import shutil
    from bot.cli import main
    config = tmp_path / "cfg"
    config.mkdir()
    for name in ("series.yaml", "rules.yaml"):
        shutil.copy(ROOT / "config" / name, config / name)
    (config / "settings.yaml").write_text("notify:\n  default: [telegram, email]\n  telegram_pace_seconds: 0\n")
    monkeypatch.setenv("CLOSEBELL_CONFIG", str(config))
    args = ["check", "--data-dir", str(data_dir), "--date", "2024-07-11", "--send"]
    assert main(args) == 0
    photos = telegram.sent("sendPhoto")
    assert sorted(p.fields["chat_id"] for p in photos) == ["1001", "1002"]
    assert photos[0].files["photo"][:4] == b"\x89PNG" and "Soft CPI print" in photos[0].fields["caption"]
    [message] = smtp.messages()
    assert "Soft CPI print" in message["Subject"]
    assert any(p.get_content_type() == "image/png" for p in message.walk())
    assert main(args) == 0  # the same check again: nothing new to send
    assert len(telegram.sent("sendPhoto")) == 2 and len(smtp.envelopes) == 1
    assert "delivery: 0 sent" in capsys.readouterr().err



def test_without_a_default_every_configured_channel_gets_the_alert(store, telegram, smtp):
    """A user who set TELEGRAM_* and SMTP_* gets alerts there without editing settings.yaml."""
    enqueue(store, [(alert("a"), None), (alert("b"), ["email"])], settings(), now=SYSTEM.now())
    channels = {(r.rule_id, r.channel) for r in store.outbox.rows(["pending"])}
    assert channels == {("a", "console"), ("a", "telegram:1001"), ("a", "telegram:1002"), ("a", "email"),
                        ("b", "email")}


def test_without_a_default_and_nothing_configured_the_console_gets_the_alert(store):
    enqueue(store, [(alert("a"), None)], settings(), now=SYSTEM.now())
    assert [r.channel for r in store.outbox.rows(["pending"])] == ["console"]


def test_quiet_hours_hold_moves_an_alert_later_without_counting_an_attempt(store):
    s = settings(default=["console"])
    enqueue(store, [(alert("quiet"), None), (alert("loud", severity="critical"), None)], s, now=SYSTEM.now())
    clock = SimulatedClock(SYSTEM.now())
    morning = clock.now() + timedelta(hours=8)
    asked = []

    def hold_until(a, now, _settings, channel=None):
        asked.append((a.rule_id, now))
        return morning if a.severity != "critical" else None
    console = Recorder()
    report = deliver(store, s, clock=clock, notifiers={"console": console}, hold_until=hold_until)
    assert (report.sent, report.held) == (1, 1) and [r for _, r, _ in console.sent] == ["loud"]
    assert asked == [("quiet", clock.now()), ("loud", clock.now())]
    [row] = store.outbox.rows(["pending"])
    assert (row.rule_id, row.attempts, stored_time(row.next_attempt_at)) == ("quiet", 0, morning)
    clock.set(morning)
    assert deliver(store, s, clock=clock, notifiers={"console": console}).sent == 1


def test_a_crashing_notifier_leaves_no_claim_behind_and_counts_a_failed_attempt(store):
    class Crashing(Recorder):
        def send(self, recipient, alerts, charts, report):
            raise RuntimeError("bug")
    s = settings(default=["console"])
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    report = deliver(store, s, notifiers={"console": Crashing()})
    assert report.retrying == 1 and report.errors == ["console: RuntimeError: bug"]
    [row] = store.outbox.rows()
    assert (row.status, row.owner, row.attempts) == ("pending", None, 1)
    assert "notifier crashed: RuntimeError: bug" in row.last_error


def test_units_are_claimed_one_at_a_time_just_before_each_send(store):
    """While the first of two alerts is being sent, the second is still pending: a kill then strands one."""
    s = settings(default=["console"])
    enqueue(store, [(alert("a"), None), (alert("b"), None)], s, now=SYSTEM.now())
    seen = []

    class Watching(Recorder):
        def send(self, recipient, alerts, charts, report):
            seen.append({r.rule_id: r.status for r in store.outbox.rows()})
            super().send(recipient, alerts, charts, report)
    assert deliver(store, s, notifiers={"console": Watching()}).sent == 2
    assert seen == [{"a": "sending", "b": "pending"}, {"a": "sent", "b": "sending"}]


def test_an_email_batch_is_one_unit_claimed_together(store, smtp):
    s = settings(default=["email"])
    enqueue(store, [(alert("a"), None), (alert("b"), None)], s, now=SYSTEM.now())
    assert units_of(EmailNotifier(s), [alert("a"), alert("b")]) == [[0, 1]]
    assert deliver(store, s).sent == 2 and len(smtp.envelopes) == 1


# -- claims: who holds one, when it is taken over, and that a claimed row is never claimed twice ----------------

def free_pid() -> int:
    """A pid no process has now (a process that ran and was reaped; not reused within a test)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def proc_start(pid: int) -> int:
    text = open(f"/proc/{pid}/stat").read()
    return int(text[text.rindex(")") + 2:].split()[19])


@pytest.fixture
def processes():
    """A live child, a zombie (killed, not yet reaped by us) and a free pid, for claims to name."""
    live = subprocess.Popen(["sleep", "60"])
    zombie = subprocess.Popen(["sleep", "60"])
    zombie_start = proc_start(zombie.pid)
    zombie.kill()
    assert wait_for(lambda: open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 10, 0.01)
    yield {"live": live.pid, "live_start": proc_start(live.pid), "zombie": zombie.pid,
           "zombie_start": zombie_start, "free": free_pid()}
    live.kill()
    live.wait()
    zombie.wait()


TAKEOVER = [
    # who holds the claim (lease 10 minutes ahead)              -> the next delivery sends it at once
    ("this process, running", lambda me, p: me, False),
    ("another process on this host, running", lambda me, p: replace(me, pid=p["live"], start=p["live_start"]), False),
    ("a pid no process has now (killed, reaped)", lambda me, p: replace(me, pid=p["free"]), True),
    ("a pid reused by a process started later", lambda me, p: replace(me, start=me.start - 1), True),
    ("a killed process not reaped yet (a zombie)", lambda me, p: replace(me, pid=p["zombie"], start=p["zombie_start"]),
     True),
    ("another host", lambda me, p: replace(me, host="elsewhere.example", pid=p["free"]), False),
    ("this host name after another boot", lambda me, p: replace(me, pid=p["free"], space="other-boot/pid:[1]"), False),
    ("this host name in another container (pid namespace)",
     lambda me, p: replace(me, pid=p["free"], space=me.space.split("/")[0] + "/pid:[1]"), False),
]


@pytest.mark.parametrize("holder, sent_now", [row[1:] for row in TAKEOVER], ids=[row[0] for row in TAKEOVER])
def test_a_claim_whose_process_is_certainly_gone_is_sent_at_once_any_other_keeps_its_lease(store, processes, holder,
                                                                                           sent_now):
    s = settings(default=["console"])
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    [row] = store.outbox.rows()
    lease_until = SYSTEM.now() + timedelta(minutes=10)
    assert store.outbox.claim([row.id], "someone:1:ab", lease_until, holder=holder(this_process(), processes))
    console = Recorder()
    assert deliver(store, s, notifiers={"console": console}).sent == int(sent_now)
    [after] = store.outbox.rows()
    assert after.status == ("sent" if sent_now else "sending")
    # Whatever it judged now, the lease still bounds the wait.
    assert deliver(store, s, clock=SimulatedClock(lease_until + timedelta(seconds=1)),
                   notifiers={"console": console}).sent == int(not sent_now)
    assert len(console.sent) == 1


def _sent(store, s):
    deliver(store, s, notifiers={"console": Recorder()})


def _failed(store, s):
    deliver(store, s, notifiers={"console": Recorder([Delivery(False, "no", permanent=True)])})


def _sending(store, s):
    [row] = store.outbox.rows()
    store.outbox.claim([row.id], "alive:1:ab", SYSTEM.now() + timedelta(minutes=10))  # by this process, running


CLAIM_AGAIN = [
    # the row is                               how it got there
    ("sent", _sent),
    ("failed", _failed),
    ("sending", _sending),
]


@pytest.mark.parametrize("status, make", CLAIM_AGAIN, ids=[row[0] for row in CLAIM_AGAIN])
def test_a_row_no_longer_pending_is_never_claimed_again(store, status, make):
    s = settings(default=["console"], max_attempts=1)
    enqueue(store, [(alert(), None)], s, now=SYSTEM.now())
    make(store, s)
    [before] = store.outbox.rows()
    assert before.status == status
    assert store.outbox.claim([before.id], "intruder:2:cd", SYSTEM.now() + timedelta(minutes=10)) == []
    [after] = store.outbox.rows()
    assert (after.status, after.owner, after.attempts) == (before.status, before.owner, before.attempts)


def test_claimers_racing_for_one_row_exactly_one_wins(store):
    enqueue(store, [(alert(), None)], settings(default=["console"]), now=SYSTEM.now())
    [row] = store.outbox.rows()
    racers = 8
    start = threading.Barrier(racers)

    def claim(i):
        start.wait()
        return store.outbox.claim([row.id], f"racer:{i}:00", SYSTEM.now() + timedelta(minutes=10))
    with ThreadPoolExecutor(racers) as pool:
        won = [claimed for claimed in pool.map(claim, range(racers)) if claimed]
    assert len(won) == 1
    [claimed] = store.outbox.rows()
    assert (claimed.status, claimed.owner) == ("sending", won[0][0].owner)


def test_outbox_and_status_name_each_claims_holder_and_mark_a_gone_one(store_url, tmp_path):
    store = cli_store(store_url, tmp_path)
    s = settings(default=["console"])
    enqueue(store, [(alert("held"), None), (alert("orphan"), None), (alert("waiting"), None)], s, now=SYSTEM.now())
    ids = {r.rule_id: r.id for r in store.outbox.rows()}
    lease_until = SYSTEM.now().replace(microsecond=0) + timedelta(minutes=10)
    me, dead = this_process(), free_pid()
    store.outbox.claim([ids["held"]], "elsewhere:4242:ab", lease_until,
                       holder=Holder("elsewhere.example", 4242, "boot/pid:[1]", 7))
    store.outbox.claim([ids["orphan"]], f"{me.host}:{dead}:cd", lease_until, holder=replace(me, pid=dead))
    env = cli_env(store_url, tmp_path)
    listing = subprocess.run([sys.executable, "-m", "bot", "outbox"], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=60)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()}
    lease = f"{lease_until.astimezone(ET):%Y-%m-%d %H:%M:%S %Z}"
    assert lines[str(ids["held"])].endswith(f"claimed by elsewhere.example pid 4242, lease until {lease}")
    assert lines[str(ids["orphan"])].endswith(f"claimed by {me.host} pid {dead}: owner gone: sent on the next delivery")
    assert "claimed" not in lines[str(ids["waiting"])]

    status = subprocess.run([sys.executable, "-m", "bot", "status"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=60)
    assert status.returncode == 0, status.stderr
    [line] = [line for line in status.stdout.splitlines() if line.startswith("outbox:")]
    assert line == (f"outbox: 1 pending, 2 sending (#{ids['orphan']} {me.host} pid {dead}: owner gone: sent on the "
                    f"next delivery; #{ids['held']} elsewhere.example pid 4242, lease until {lease}), 0 failed, 0 sent")
