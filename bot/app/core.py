"""`App`: every verb a user can ask of Closebell, in one place.

Built once per process from a configuration (`LiveConfig`: the last good
rules and settings), a clock, and either the store or a `--data-dir` of CSV
history. Each method returns a typed result from `bot.app.results`; adapters
(CLI, Telegram, daemon, replay) parse their input, call one method, render.

Errors are raised from the one tree in `bot.errors`: `UsageError` for a bad
request (unknown rule, series, channel), `ConfigError`, `DataError`,
`StoreError`, `DeliveryError`. The CLI maps them to exit codes, Telegram to a
short reply, the daemon to a log line and a failed run record.

What runs after each close (fetch, wait, evaluate, queue, deliver, record) is
not a verb: it is the session job, `bot.app.session.SessionJob` (`app.session_job`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pandas as pd

from bot.app import results as R
from bot.app import tune
from bot.app.evaluation import Prepared, latest_session_with_data, prepare, series_needed
from bot.app.vintages import revised_notes
from bot.clock import SYSTEM, Clock, stored_time
from bot.data import calendar, load
from bot.engine import frame as frames
from bot.engine.lifecycle import held_but_quiet
from bot.errors import ConfigError, DataError, UsageError
from bot.settings.live import LiveConfig, Loaded
from bot.suggest import did_you_mean

# Each verb imports what only it needs inside its method (marked `deliberately lazy`), so `check` pays for
# the evaluation alone: explain, sweep, the tests file, the backtest report, the notifiers and the outbox
# load only for the verbs that use them.

log = logging.getLogger(__name__)

MAX_MUTE = timedelta(days=366)


class App:
    def __init__(self, config: LiveConfig, *, clock: Clock = SYSTEM, store=None, data_dir: str | None = None,
                 notifiers: dict | None = None, fetcher=None, heartbeat_url: str | None = None):
        self.config = config
        self.clock = clock
        self._store = store
        self.data_dir = str(data_dir) if data_dir else None
        self.notifiers = notifiers  # channel -> notifier override (replay's console, tests)
        self.fetcher = fetcher  # None: the sources (bot.app.session.live_fetch)
        self.heartbeat_url = heartbeat_url  # pinged by the session job
        self.fence = None  # the daemon's leader lock (bot.store.lock.Fence): its sends stop once it is lost
        if config.on_problem is None:
            config.on_problem = self._config_problem

    @classmethod
    def open(cls, config_dir=None, rules_path=None, needs_rules: bool = True, **kwargs) -> "App":
        """The app for the configuration in `config_dir`; raises ConfigError with every problem (of the
        series and settings only, for verbs that never read the rules)."""
        config = LiveConfig.at(config_dir, rules_path)
        config.get() if needs_rules else config.base()
        return cls(config, **kwargs)

    # -- what every verb stands on ---------------------------------------------------------------

    @property
    def loaded(self) -> Loaded:
        """The rules in force: the current good configuration (re-read when a file changed; the last good
        one kept) with the parameter overrides set from the phone (bot.app.tune)."""
        return tune.in_force(self, self.config.get())

    @property
    def store(self):
        if self._store is None:
            from bot.store import open_store  # deliberately lazy: sqlalchemy only for verbs that need it
            self._store = open_store()
        return self._store

    def close(self):
        if self._store is not None:
            self._store.close()

    def _config_problem(self, key, text):
        from bot.notify.delivery import admin_notice  # deliberately lazy: the outbox only when there is a problem
        admin_notice(self.store, self.config.current.settings, key, text, session=self.clock.today_et(),
                     now=self.clock.now())

    def evaluate(self, as_of: date | None = None, rules=None, as_written: bool = False) -> Prepared:
        """Every rule over every session up to `as_of`, with only what was public by then (`as_written`: the
        rules file without the phone's overrides, so no store is opened for them)."""
        loaded = self.config.get() if as_written else self.loaded
        store = None if self.data_dir else self.store
        return prepare(rules if rules is not None else loaded.rules, loaded.series, store=store,
                       data_dir=self.data_dir, as_of=as_of, today=self.clock.today_et())

    def rule(self, rule_id: str):
        rules = self.loaded.rules
        for rule in rules:
            if rule.id == rule_id:
                return rule
        ids = [r.id for r in rules]
        raise UsageError(f"no rule '{rule_id}'{did_you_mean(rule_id, ids)} (rules: {', '.join(ids)})")

    def series_names(self, names, known=None) -> list[str]:
        """`names` checked against series.yaml (case-insensitive), or UsageError with a suggestion."""
        known = known if known is not None else self.loaded.series
        out = []
        for name in names:
            match = name if name in known else next((k for k in known if k.upper() == name.upper()), None)
            if match is None:
                raise UsageError(f"unknown series '{name}'{did_you_mean(name, known)} (series: {', '.join(known)})")
            out.append(match)
        return out

    # -- evaluation verbs ------------------------------------------------------------------------

    def check(self, day: date | None = None, send: bool = False) -> R.CheckResult:
        """Every rule as of one session (default: the latest with data); with `send`, deliver what fires."""
        rules = self.loaded.rules
        prepared = self.evaluate(as_of=day)
        session, note = _resolve_session(prepared, rules, day)
        ev = prepared.evaluation
        i = ev.frame.index_of(session)
        states = []
        for rule in rules:
            holds = ev.holds[rule.id][i]
            states.append(R.RuleState(
                id=rule.id, title=rule.title, severity=rule.severity, fires=bool(ev.fires[rule.id][i]),
                holds=None if holds != holds else bool(holds),
                values={k: (None if v != v else round(v, 6)) for k, v in ev.values(rule, i).items()},
                message=ev.message(rule, i), gaps=ev.gaps(rule, i), not_sent=self._not_sent(ev, rule, i)))
        result = R.CheckResult(session.date(), note, states)
        if day is None and not self.data_dir:  # live data: say when the latest is older than it should be
            result.stale = self.session_job.stale(calendar.last_closed_session(self.clock.now()))
        if send:
            self.session_job.queue(prepared, session)
            result.delivery = self.deliver_due()
        return result

    def backtest(self, start: date | None = None, end: date | None = None):
        """Every firing in the window. Everything is computed over all data; the window only limits what
        is reported, so each day's answer depends on data up to that day alone."""
        if start and end and start > end:
            raise UsageError(f"--from {start} is after --to {end}")
        from bot.app.backtest import backtest  # deliberately lazy: the report only for backtest
        result = backtest(self.evaluate(), start, end)
        result.revised = revised_notes(result.prepared.frame, series_needed(self.loaded.rules), start, end)
        result.overrides = tune.notes(self.loaded)
        return result

    @staticmethod
    def _not_sent(ev, rule, i: int) -> str | None:
        """Why a rule whose condition holds on session i sends nothing (bot.engine.lifecycle.held_but_quiet)."""
        why = held_but_quiet(ev.holds[rule.id], ev.fires[rule.id], ev.active[rule.id], i, rule.for_sessions,
                             rule.cooldown)
        if why is None:
            return None
        kind, k = why
        sessions = ev.frame.sessions
        if kind == "for":
            return f"for: {k} of {rule.for_sessions} sessions"
        fired = sessions[k].date()
        if kind == "active":
            return f"active since {fired} (resolve: true): it fires again once it has cleared"
        # the cooldown's last session may lie past the data: the NYSE calendar counts on
        last = sessions[k + rule.cooldown] if k + rule.cooldown < len(sessions) else \
            calendar.sessions(start=sessions[k])[rule.cooldown]
        return f"in cooldown until {last.date()} (fired {fired}; cooldown: {rule.cooldown})"

    def session_index(self, prepared, day: date | None):
        """(session, position in the frame, note): `day` or the session before it; default the latest with data."""
        session, note = _resolve_session(prepared, self.loaded.rules, day)
        frame = prepared.frame
        if session not in frame.sessions:
            raise UsageError(f"{session.date()} is outside the data ({frame.sessions[0].date()} .. "
                             f"{frame.sessions[-1].date()})")
        return session, frame.index_of(session), note

    def explain(self, rule_id: str, day: date | None = None):
        """Why `rule_id` fired or stayed quiet on `day`: verdict, every sub-condition with its value,
        threshold and margin, what was unknown, and the firings around it (bot.engine.explain)."""
        from bot.engine.explain import explain  # deliberately lazy: only for explain
        rule = self.rule(rule_id)
        # one evaluation over all data: a day's values read only data up to that day (check(D) equals
        # backtest on D), and the next firing after D is then in view too
        prepared = self.evaluate()
        _session, i, note = self.session_index(prepared, day)
        result = explain(prepared.evaluation, rule, i)
        result.note = "; ".join(filter(None, [note, tune.override_notes(self.loaded, rule_id)])) or None
        result.revised = revised_notes(prepared.frame, rule.needs, _session, _session)
        return result

    def sweep(self, rule_id: str, specs, start: date | None = None, end: date | None = None,
              holdout: date | None = None):
        """The rule's firings for every parameter value (a grid for two names), in one vectorized pass."""
        from bot.engine.returns import direction_of  # deliberately lazy: only for sweep
        from bot.engine.sweep import holdout_check, parse_grid, sweep  # deliberately lazy: as above
        rule = self.rule(rule_id)
        if start and end and start > end:
            raise UsageError(f"--from {start} is after --to {end}")
        grid = parse_grid(specs)  # a SweepError is a UsageError: the spec was written wrongly
        unknown = [name for name in grid if name not in rule.params]
        if unknown:
            declared = ", ".join(rule.params) or "none"
            raise UsageError(f"{rule_id} has no parameter '{unknown[0]}'{did_you_mean(unknown[0], rule.params)} "
                             f"(its params: {declared}); declare it in rules.yaml, e.g. params: "
                             f"{{{unknown[0]}: 4}}, and use the name in `when`")
        prepared = self.evaluate()
        rows = R.SweepRows(sweep(self.loaded.rules, prepared.frame, rule_id, grid, start=start, end=end,
                                 holdout=holdout, evaluation=prepared.evaluation))
        rows.revised = revised_notes(prepared.frame, rule.needs, start, end)
        rows.holdout = holdout_check(rows, direction_of(rule)) if holdout is not None else None
        return rows

    def test_rules(self, tests_path=None, start: date | None = None, end: date | None = None):
        """Every expectation of the rules' tests file (default: rules.test.yaml beside the rules) checked
        against one evaluation over all history. The rules file is tested as written, like code: overrides set
        from the phone are not part of it (tune's preview names the expectations an override would break)."""
        from bot.engine.expectations import check_expectations  # deliberately lazy: only for test-rules
        from bot.settings.rules_tests_file import load_tests, rules_tests_path  # deliberately lazy: as above
        rules = self.config.get().rules
        path = tests_path or rules_tests_path(self.config.rules_path)
        expectations = load_tests(path, rules)
        command = "closebell explain {rule} --date {date}"
        if self.config.rules_path != self.config.config_dir / "rules.yaml":
            command += f" --rules {self.config.rules_path}"
        if self.data_dir:
            command += f" --data-dir {self.data_dir}"
        return R.TestRulesResult(path, check_expectations(self.evaluate(as_written=True).evaluation,
                                                          expectations, start, end, command))

    def rules_tests(self):
        """The rules' tests file, validated against the rules (None when there is none)."""
        from bot.settings.rules_tests_file import load_tests, rules_tests_path  # deliberately lazy: validate only
        path = rules_tests_path(self.config.rules_path)
        if not path.exists():
            return None
        return R.RulesTests(path, load_tests(path, self.loaded.rules))

    def warnings(self):
        """What validates but says nothing: rules that never fired over the data, thresholds never reached.
        Empty when no data is at hand (no --data-dir and an empty store)."""
        from bot.engine.warnings import never_fired_warnings, never_reached_warnings  # deliberately lazy: validate
        try:
            evaluation = self.evaluate().evaluation
        except DataError:
            return []
        return never_fired_warnings(evaluation) + never_reached_warnings(evaluation)

    def plot_backtest(self, result, start, end, path: str) -> None:
        """The backtest's chart: each rule's series with its firings marked, written to `path` (PNG)."""
        from bot.notify import charts  # deliberately lazy: only with --plot
        units = {name: s.units for name, s in self.loaded.series.items()}
        known = [r.evaluable_from for r in result.reports if r.evaluable_from is not None]
        charts.backtest_chart(result.prepared, self.loaded.rules, start, end, path, units,
                              evaluable_from=min(known) if known else None)

    def plot_sweep(self, rule_id: str, rows, names: list[str], path: str) -> None:
        """Firings per year against the swept value, written to `path` (PNG)."""
        from bot.notify import charts  # deliberately lazy: only with --plot
        charts.sweep_chart(rows, names, path, f"{rule_id}: firings per year by {' and '.join(names)}")

    # -- the session job (bot.app.session.SessionJob: the daemon, catch-up, replay) -----------------

    @property
    def session_job(self):
        """The daemon's pipeline for one session, run on this app's clock, store and rules."""
        from bot.app.session import SessionJob  # deliberately lazy: alerts, charts and the outbox only for jobs
        return SessionJob(self)

    def catch_up(self, should_stop=lambda: False):
        """`run --once`: every session missed since the last completed run (SessionJob.catch_up)."""
        return self.session_job.catch_up(should_stop)

    def run_session(self, session, **kwargs) -> R.SessionOutcome:
        """One session's job now, whatever the clock says (SessionJob.run_session)."""
        return self.session_job.run_session(session, **kwargs)

    # -- data -------------------------------------------------------------------------------------

    def fetch(self, names=None, since: date | None = None, data_dir: str | None = None, progress: bool = False):
        """Series from their sources (or DIR/NAME.csv) into the store, incrementally; FetchResult per series."""
        from bot.data.fetch import update  # deliberately lazy: requests and the sources
        series, settings = self.config.base()
        names = self.series_names(names, series) if names else None
        return update(self.store, series, settings, names=names, since=since, data_dir=data_dir,
                      today=self.clock.today_et(), progress=progress)

    def sources(self, names=None, sessions: int = 10) -> list:
        """Every series' primary and fallback tried for the last `sessions` sessions: rows, last date,
        latency, and whether the two agree (bot.data.doctor), so a broken feed shows before an evening
        is missed."""
        from bot.data.doctor import probe  # deliberately lazy: requests and the sources
        series, settings = self.config.base()
        names = self.series_names(names, series) if names else None
        if not 1 <= sessions <= 250:
            raise UsageError("--sessions takes a number from 1 to 250")
        return probe(series, settings, names=names, sessions=sessions, clock=self.clock)

    # -- channels -----------------------------------------------------------------------------------

    def channels(self) -> list:
        """Each channel: configured or not (and why), and the rules routed to it."""
        from bot.notify import channel_report  # deliberately lazy: the notifier registry, not for check
        try:
            rules = self.loaded.rules
        except ConfigError:  # notify-test with a broken rules file: the channels still get tested
            rules = []
        return channel_report(self.config.base()[1], rules)

    def notify_test(self, channel: str | None = None) -> list[R.ChannelTest]:
        """A sample alert with a chart through each configured channel (or one), with each exact failure."""
        from bot.app.sample import sample_alert, sample_chart  # deliberately lazy: notify-test only
        from bot.notify import NOTIFIERS, configured, make_notifier, notifier_module  # deliberately lazy: as above
        if channel and channel not in NOTIFIERS:
            raise UsageError(f"unknown channel '{channel}'{did_you_mean(channel, NOTIFIERS)} "
                             f"(channels: {', '.join(NOTIFIERS)})")
        channels = [channel] if channel else [c for c in NOTIFIERS if configured(c)]
        alert, chart = sample_alert(self.clock.today_et()), sample_chart(self.clock.today_et())
        out = []
        for name in channels:
            if not configured(name):
                out.append(R.ChannelTest(name, False, f"not configured: set "
                                                      f"{', '.join(notifier_module(name).REQUIRED_ENV)}"))
                continue
            notifier = (self.notifiers or {}).get(name) or make_notifier(name, self.config.base()[1], clock=self.clock)
            for recipient in notifier.recipients():
                results: list = []
                notifier.send(recipient, [alert], {0: chart}, lambda _i, delivery, out=results: out.append(delivery))
                where = f"{name}:{recipient}" if recipient else name
                ok = bool(results and results[0].ok)
                out.append(R.ChannelTest(where, ok, "" if ok else (results[0].error if results else "no answer")))
        return out

    # -- deliveries ----------------------------------------------------------------------------------

    def deliver_due(self, ignore_backoff: bool = False):
        """Send every due outbox row, one claimed unit at a time (expired claims are recovered first);
        quiet hours hold what may wait."""
        from bot.notify import quiet  # deliberately lazy: delivery only (check --send, run, replay)
        from bot.notify.delivery import deliver  # deliberately lazy: as above
        return deliver(self.store, self.loaded.settings, clock=self.clock, notifiers=self.notifiers,
                       hold_until=quiet.hold_until, ignore_backoff=ignore_backoff, fence=self.fence)

    def deliveries(self, include_sent: bool = False, statuses=None, limit: int = 1000) -> list[R.DeliveryRow]:
        """Outbox rows (pending, sending and failed; every one with `include_sent`), each claim with its holder."""
        from bot.notify.alert import Alert  # deliberately lazy: the outbox's verbs only
        from bot.store.outbox import gone, holder_of  # deliberately lazy: as above
        statuses = statuses or (None if include_sent else ("pending", "sending", "failed"))
        now, out = self.clock.now(), []
        for r in self.store.outbox.rows(statuses, limit=limit):
            owner, lease, over = "", None, False
            if r.status == "sending":
                holder = holder_of(r)
                lease = stored_time(r.lease_until) if r.lease_until else None
                owner = holder.line() if holder else ""
                over = lease is None or lease <= now or gone(holder)
            out.append(R.DeliveryRow(r.id, r.rule_id, r.session, r.channel, r.status, r.attempts, r.last_error,
                                     r.next_attempt_at, Alert.from_json(r.payload).title, owner, lease, over))
        return out

    def retry_deliveries(self) -> R.RetryResult:
        """Failed rows back to pending and everything due sent now, whatever the backoff said."""
        requeued = self.store.outbox.requeue_failed(self.clock.now())
        return R.RetryResult(requeued, self.deliver_due(ignore_backoff=True))

    # -- state -----------------------------------------------------------------------------------

    def status(self) -> R.Status:
        """The state of the bot; on PostgreSQL also who leads and who stands by, as the server's own lock table
        and sessions show them now (bot.store.lock.instances: nothing stale survives a dead instance)."""
        from bot.app.schedule import next_run  # deliberately lazy: status only
        from bot.store.lock import instances  # deliberately lazy: status only
        loaded, store, now = self.loaded, self.store, self.clock.now()
        runs = store.runs_list(1)
        last = None
        if runs:
            run = runs[0]
            last = R.RunRecord(run.session, run.status, bool(run.late),
                               stored_time(run.finished_at) if run.finished_at else None, run.detail or "")
        session, when = next_run(now, loaded.settings.schedule.offset_minutes)
        last_dates, fetches = store.last_dates(), store.last_fetches()
        behind = {row.series: row.reason for row in self.session_job.stale(calendar.last_closed_session(now))}
        series = []
        for name in series_needed(loaded.rules) or list(loaded.series):
            fetch = fetches.get(name) or {}
            series.append(R.SeriesState(name, last_dates.get(name), fetch.get("source"), fetch.get("ok"),
                                        fetch.get("message") or "", behind.get(name, "")))
        return R.Status(now=now, store=store.where, last_run=last, next_session=session.date(),
                        next_run_at=when, series=series, outbox=store.outbox.counts(),
                        failed=store.outbox.rows(["failed"], limit=5), mutes=store.mutes(now),
                        channels=self.channels(), overrides=tune.notes(loaded), instances=instances(store),
                        claimed=self.deliveries(statuses=["sending"], limit=5))

    def rules_overview(self) -> list[R.RuleOverview]:
        prepared = self.evaluate()
        mutes = self.store.mutes(self.clock.now())
        out = []
        for rule in self.loaded.rules:
            fires = prepared.evaluation.fire_dates(rule.id)
            out.append(R.RuleOverview(rule.id, rule.title, rule.severity,
                                      fires[-1].date() if len(fires) else None, mutes.get(rule.id),
                                      tune.override_notes(self.loaded, rule.id)))
        return out

    def last_alerts(self, count: int = 5) -> list:
        """The `count` most recent alerts delivered (one per rule and session, notices left out)."""
        from bot.notify.alert import Alert  # deliberately lazy: the outbox's verbs only
        seen, out = set(), []
        for row in self.store.outbox.rows(["sent"], limit=500):
            key = (row.rule_id, row.session)
            if ":" in row.rule_id or key in seen:  # notice:..., digest:...: the bot's own messages
                continue
            seen.add(key)
            out.append(Alert.from_json(row.payload))
            if len(out) >= count:
                break
        return out

    def chart(self, names, months: int = 6) -> R.Chart:
        """A PNG of one or two series over the last `months` months of stored (or --data-dir) data."""
        from bot.notify import charts  # deliberately lazy: matplotlib's wrapper only for charts
        names = self.series_names(names)[:2]
        months = max(1, min(int(months), 120))
        loaded = self.loaded
        data = load.observations(names, store=None if self.data_dir else self.store, data_dir=self.data_dir,
                                 series_defs=loaded.series, today=self.clock.today_et())
        end = max(d.index.max() for d in data.values() if len(d))
        start = end - pd.DateOffset(months=months)
        frame = frames.build(data, {n: loaded.series[n].frequency for n in names}, calendar.sessions(start, end))
        units = {n: loaded.series[n].units for n in names}
        png = charts.series_chart(frame, names, units, [], f"{' vs '.join(names)}, {months} months")
        return R.Chart(f"{' vs '.join(names)}, last {months} months to {end:%Y-%m-%d}", png)

    def mute(self, rule_id: str, duration: timedelta) -> datetime:
        """Silence a rule for `duration` (kept in the store across restarts); returns when it ends."""
        self.rule(rule_id)
        if not timedelta(0) < duration <= MAX_MUTE:
            raise UsageError(f"a mute lasts from 1 minute to {MAX_MUTE.days} days")
        until = self.clock.now() + duration
        self.store.mute(rule_id, until)
        return until

    def unmute(self, rule_id: str) -> bool:
        self.rule(rule_id)
        return self.store.unmute(rule_id)

    # -- tuning from the phone (bot.app.tune): the rules in force are the file plus these overrides -------

    def tune_preview(self, rule_id: str, name: str, value):
        """What `rule_id` `name` = `value` would do, before anything changes (a TunePreview)."""
        return tune.preview(self, rule_id, name, value)

    def tune_params(self, rule_id: str) -> list:
        """The rule's parameters: value, file or phone override, firings a year at nearby values."""
        return tune.params_view(self, rule_id)

    def tune_apply(self, rule_id: str, name: str, value, who: str):
        return tune.apply(self, rule_id, name, value, who)

    def tune_reset(self, rule_id: str, name: str | None, who: str) -> list:
        return tune.reset(self, rule_id, name, who)

    def tune_list(self) -> list:
        self.loaded  # the file may have won over some since they were set: retire those first
        return self.store.overrides.current()

    def tune_history(self) -> list:
        return self.store.overrides.history()

    def tune_export(self, who: str) -> list:
        return tune.export(self, who)

    def tune_open(self, rule_id: str, name: str, value, who: str):
        """A preview kept in the store under an id, for its Apply / Cancel buttons."""
        return tune.open_preview(self, rule_id, name, value, who)

    def tune_press(self, preview_id: int, action: str, who: str):
        return tune.press(self, preview_id, action, who)


def _resolve_session(prepared, rules, day):
    """The session to report and a note when it is not the day asked for."""
    if day is None:
        return latest_session_with_data(prepared, rules), None
    session = calendar.session_on_or_before(day)
    if session.date() != day:
        return session, f"{day} is not a NYSE session; using the last session before it, {session.date()}"
    return session, None
