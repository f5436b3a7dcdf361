"""The long-running bot: schedule the app's session job after every close, hold the lock, stop cleanly.

The daemon decides *when*; the application core (`bot.app.App`) decides
*what*. Start-up: take the instance lock (or stand by, on PostgreSQL), catch
up on every session missed since the last completed run, then wait for the
next close. A job whose data is not in yet is looked at again every
`poll_minutes` until the deadline. A minute timer picks up configuration
edits and retries due deliveries.

High availability (PostgreSQL): the lock is watched every
`standby_retry_seconds`. When its connection drops, the daemon stops its
scheduler and command loop, tries the lock again on a fresh connection and
either resumes as leader or stands by: one log line says which. Its senders
(in process, or in a session's child) carry the lock's fence
(bot.store.lock.Fence) and stop before the next claim once the lock is
another's, without waiting for the watch. A new leader delivers what is
pending at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import signal
import sys
import threading
from datetime import timedelta

import pandas as pd
from apscheduler.schedulers.background import BackgroundScheduler

from bot.app.schedule import next_run
from bot.clock import ET
from bot.daemon.child import ChildJob, run_session
from bot.daemon.trigger import SessionCloseTrigger
from bot.errors import StoreError
from bot.store.lock import InstanceLock

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None (another libc, or none found)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> None:
    """Give back what a job used: collect cycles, then return freed heap pages to the system.

    A job builds frames of the whole history; once it is done only a few MB stay
    alive, but glibc keeps the freed pages, so the idle daemon would sit at the
    job's peak until the next close. malloc_trim(0) returns them (glibc only).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class Daemon:
    def __init__(self, app, lock=None, isolated: bool = False):
        """`isolated`: each session's job in a child process (bot.daemon.child), as `run` does; tests and
        `run --in-process` keep it in this one."""
        self.app = app
        self.isolated = isolated
        self.lock = lock or InstanceLock(app.store)
        self.stop_event = threading.Event()
        self.scheduler = None
        self._job_lock = threading.Lock()
        self.commands = None  # the Telegram command poller, when enabled

    @property
    def schedule(self):
        """The schedule settings as the files say (re-read when edited); never the store, so a store that is
        gone cannot stop the daemon from standing by or retrying."""
        return self.app.config.get().settings.schedule

    def process(self, session):
        """Run the job for `session`; if its data is not in yet, look again until the deadline."""
        with self._job_lock:
            if self.stop_event.is_set():
                return None
            try:
                outcome = run_session(ChildJob.of(self.app), session) if self.isolated else \
                    self.app.session_job.run_due(session)
            except Exception:  # a bug in one job must not stop the schedule
                log.exception("job for %s crashed (retried at the next close)", pd.Timestamp(session).date())
                return None
            finally:
                release_memory()
            if outcome.status == "waiting":
                now = self.app.clock.now()
                when = min(now + timedelta(minutes=self.schedule.poll_minutes), self.app.session_job.deadline(session))
                log.info("%s; next look at %s", outcome.line(), when.astimezone(ET).strftime("%H:%M %Z"))
                if self.scheduler is not None:
                    self.scheduler.add_job(self.process, "date", run_date=when, args=[session],
                                           id=f"poll-{pd.Timestamp(session).date()}", replace_existing=True,
                                           misfire_grace_time=3600)
            elif outcome.status == "failed":
                log.error("%s (retried at the next close)", outcome.line())
            return outcome

    def catch_up(self):
        """Every session missed since the last completed run, oldest first (also the after-close job).

        A store that fails here is one log line; the next close (or the lock's watch) tries again."""
        try:
            outcomes = self.app.session_job.catch_up(should_stop=self.stop_event.is_set, run=self.process)
        except StoreError as exc:
            log.error("catch-up stopped, the store failed: %s (tried again at the next close)", exc)
            outcomes = []
        release_memory()
        return outcomes

    def tick(self):
        """Every minute: pick up configuration edits and retry due deliveries (the lock is watched by `run`)."""
        try:
            self.app.deliver_due()
        except StoreError as exc:  # a store fault is not a bug: one line, no traceback
            log.error("periodic delivery failed, the store failed: %s", exc)
        except Exception:
            log.exception("periodic delivery failed")

    # -- life cycle -----------------------------------------------------------------------

    def acquire(self, lost: bool = False) -> bool:
        """Take the lock; on PostgreSQL wait as a standby until it is free (or we are stopped).

        `lost`: the lock was just lost (its connection dropped); one line says whether this instance took it
        straight back (resumed) or stands by. A store that cannot be reached while standing by is retried,
        not fatal; at start (not `lost`) it is the one-line store error every command gives."""
        retry = self.schedule.standby_retry_seconds
        got = self._try_lock(raise_error=not lost)
        if got:
            if lost:
                log.warning("the store connection holding the lock dropped; reconnected and resumed as the active "
                            "instance")
            return True
        if lost:
            log.warning("lost the instance lock (its store connection dropped) and another instance holds it now: "
                        "standing by, retrying every %ds", retry)
        else:
            log.warning("another instance holds the lock: standing by, retrying every %ds", retry)
        while not self.stop_event.wait(retry):
            if self._try_lock(raise_error=False):
                log.info("took over as the active instance")
                return True
        return False

    def _try_lock(self, raise_error: bool) -> bool:
        try:
            return self.lock.acquire()
        except StoreError as exc:
            if raise_error:
                raise
            log.warning("standing by: the store cannot be reached (%s)", exc)
            return False

    def install_signal_handlers(self):
        def stop(signum, _frame):
            log.info("received %s: stopping after the current step", signal.Signals(signum).name)
            self.stop_event.set()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self):
        """Lead while holding the lock; on losing it stand by (or resume at once), until stopped."""
        self.install_signal_handlers()
        lost = False
        try:
            while self.acquire(lost=lost):
                lost = self._lead()
                if not lost:
                    break
        finally:
            self.lock.release()
            log.info("stopped")

    def _lead(self) -> bool:
        """Be the active instance until stopped (False) or until the lock is lost (True).

        The senders get the lock's fence, so a send never starts once the lock is another's; what is
        pending is delivered at once (a standby taking over does not wait for the minute tick); the lock is
        looked at every `standby_retry_seconds`."""
        self.app.fence = self.lock.fence
        lost = False
        try:
            self.tick()  # what the last leader left pending (or left mid-send) goes now, before any catch-up
            self.catch_up()
            offset = self.schedule.offset_minutes
            self.scheduler = BackgroundScheduler(timezone=ET, job_defaults={"coalesce": True,
                                                                            "misfire_grace_time": 6 * 3600})
            self.scheduler.add_job(self.catch_up, SessionCloseTrigger(offset), id="after-close", max_instances=1)
            self.scheduler.add_job(self.tick, "interval", seconds=60, id="tick", max_instances=1)
            self.scheduler.start()
            session, when = next_run(self.app.clock.now(), offset)
            log.info("running; next job for %s at %s", f"{session:%Y-%m-%d}", when.strftime("%Y-%m-%d %H:%M %Z"))
            self._start_commands()
            watch = self.schedule.standby_retry_seconds
            while not self.stop_event.wait(watch):
                if not self.lock.alive():
                    lost = True
                    break
        except StoreError as exc:  # the store failed under a step: lead again (or stand by) once it answers
            if self.stop_event.is_set():
                raise
            log.error("the store failed while leading: %s", exc)
            self.lock.release()
            lost = True
            self.stop_event.wait(self.schedule.standby_retry_seconds)
        finally:
            self._stop_commands()
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
                self.scheduler = None
            if lost:
                self.app.fence = None
        return lost and not self.stop_event.is_set()

    def _start_commands(self):
        """The Telegram command loop runs while this instance leads (a standby must not take the updates)."""
        if self.commands is None:
            return
        if self.commands.stopping.is_set():  # stopped when the lock was lost: a fresh loop of the same kind
            self.commands = type(self.commands)(self.app)
        self.commands.start()

    def _stop_commands(self):
        if self.commands is not None and self.commands.thread.is_alive():
            self.commands.stop()
