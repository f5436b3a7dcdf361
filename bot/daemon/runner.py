"""The long-running bot: schedule a job after every close, catch up, keep rules live, stop cleanly.

Start-up: take the instance lock (or stand by, on PostgreSQL), return rows a
crash left mid-send to the outbox, catch up on every session missed since the
last completed run (at most `catch_up_sessions`), then wait for the next close.
Each job fetches, waits for the session's data until the deadline, evaluates
and delivers through the outbox (`bot.pipeline.run_session`). A minute timer
retries due deliveries and notices edits to the configuration.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta

import pandas as pd

from bot.daemon.trigger import SessionCloseTrigger, next_run, sessions_due
from bot.data.calendar import ET
from bot.errors import ClosebellError
from bot.pipeline import Runtime, run_session

log = logging.getLogger(__name__)

class Daemon:
    def __init__(self, runtime: Runtime, lock, now=None):
        self.runtime = runtime
        self.lock = lock
        self.now = now or (lambda: datetime.now(ET))
        self.stop_event = threading.Event()
        self.scheduler = None
        self._job_lock = threading.Lock()
        self.commands = None

    # -- the work -------------------------------------------------------------------------

    @property
    def schedule(self):
        return self.runtime.config.get().settings.schedule

    def deadline(self, session) -> datetime:
        return datetime.combine(pd.Timestamp(session).date(), self.schedule.deadline, ET)

    def process(self, session):
        """Run the job for `session`; if its data is not in yet, poll again until the deadline."""
        with self._job_lock:
            if self.stop_event.is_set():
                return None
            now = self.now()
            deadline = self.deadline(session)
            try:
                outcome = run_session(self.runtime, session, late=now > deadline, final=now >= deadline)
            except ClosebellError as exc:
                log.error("job for %s failed: %s (retried at the next close)", pd.Timestamp(session).date(), exc)
                return None
            except Exception:
                log.exception("job for %s crashed (retried at the next close)", pd.Timestamp(session).date())
                return None
            if outcome.status == "waiting":
                when = min(now + timedelta(minutes=self.schedule.poll_minutes), deadline)
                log.info("%s; next look at %s", outcome.line(), when.strftime("%H:%M %Z"))
                if self.scheduler is not None:
                    self.scheduler.add_job(self.process, "date", run_date=when, args=[session],
                                           id=f"poll-{pd.Timestamp(session).date()}", replace_existing=True,
                                           misfire_grace_time=3600)
            return outcome

    def catch_up(self):
        """Evaluate, oldest first, every session missed since the last completed run."""
        store = self.runtime.store
        last_done = store.last_done_session()
        # a first start evaluates the latest session only: history is for `backtest`, not for alerts
        limit = self.schedule.catch_up_sessions if last_done else min(1, self.schedule.catch_up_sessions)
        due = sessions_due(self.now(), self.schedule.offset_minutes, after=last_done, limit=limit)
        if due:
            log.info("catching up %d session(s): %s", len(due), ", ".join(f"{d:%Y-%m-%d}" for d in due))
        for session in due:
            if self.stop_event.is_set():
                return
            self.process(session)

    def on_close(self):
        """The scheduled job: the session whose close (plus offset) just passed, and any that failed before."""
        self.catch_up()

    def tick(self):
        """Every minute: pick up configuration edits, retry due deliveries, check the lock."""
        from bot.notify.outbox import deliver
        try:
            loaded = self.runtime.config.get()
            deliver(self.runtime.store, loaded.settings, notifiers=self.runtime.notifiers)
        except Exception:
            log.exception("periodic delivery failed")
        if not self.lock.alive():
            log.error("lost the instance lock (database connection dropped); stopping")
            self.stop_event.set()

    # -- life cycle -----------------------------------------------------------------------

    def acquire(self) -> bool:
        """Take the lock; on PostgreSQL wait as a standby until it is free (or we are stopped)."""
        if self.lock.acquire():
            return True
        retry = self.schedule.standby_retry_seconds
        log.warning("another instance holds the lock: standing by, retrying every %ds", retry)
        while not self.stop_event.wait(retry):
            if self.lock.acquire():
                log.info("took over as the active instance")
                return True
        return False

    def install_signal_handlers(self):
        def stop(signum, _frame):
            log.info("received %s: stopping after the current step", signal.Signals(signum).name)
            self.stop_event.set()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self):
        from apscheduler.schedulers.background import BackgroundScheduler
        self.install_signal_handlers()
        if not self.acquire():
            return
        try:
            recovered = self.runtime.store.outbox_recover()
            if recovered:
                log.warning("%d delivery(ies) were mid-send when the last instance stopped: sending again",
                            recovered)
            self.catch_up()
            offset = self.schedule.offset_minutes
            self.scheduler = BackgroundScheduler(timezone=ET, job_defaults={"coalesce": True,
                                                                            "misfire_grace_time": 6 * 3600})
            self.scheduler.add_job(self.on_close, SessionCloseTrigger(offset), id="after-close", max_instances=1)
            self.scheduler.add_job(self.tick, "interval", seconds=60, id="tick", max_instances=1)
            self.scheduler.start()
            session, when = next_run(self.now(), offset)
            log.info("running; next job for %s at %s", f"{session:%Y-%m-%d}", when.strftime("%Y-%m-%d %H:%M %Z"))
            if self.commands is not None:
                self.commands.start()
            self.stop_event.wait()
        finally:
            if self.commands is not None:
                self.commands.stop()
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
            self.lock.release()
            log.info("stopped")
