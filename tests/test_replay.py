"""Replay: the daemon's schedule over real history on a simulated clock, against the same app."""

from __future__ import annotations

import io
import shutil
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from bot.app import App
from bot.clock import ET, SimulatedClock
from bot.daemon.replay import Arrivals, replay
from bot.app.schedule import run_time
from bot.notify.console import Notifier as Console
from bot.settings.live import LiveConfig
from bot.store import Store
from tests.conftest import ROOT

BUSY = """
rules:
  - id: small-up
    when: pct_change(IWM, 1) >= 1
    cooldown: 0
  - id: small-down-or-rsp
    when: pct_change(IWM, 1) <= -1.5 or pct_change(RSP, 5) <= -3
    cooldown: 2
  - id: after-up
    when: fired(small-up, 3) and change(DGS10, 1) < 0
    cooldown: 1
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config"
    path.mkdir()
    shutil.copy(ROOT / "config" / "series.yaml", path / "series.yaml")
    (path / "settings.yaml").write_text("notify:\n  charts: false\n")
    (path / "rules.yaml").write_text(BUSY)
    return path


def replayed(tmp_path, config, data_dir, name, start, end, per_session, before=None):
    out = io.StringIO()
    clock = SimulatedClock(datetime.combine(start, datetime.min.time(), ET))
    arrivals = Arrivals(str(data_dir))
    app = App(LiveConfig(config / "rules.yaml", config), clock=clock, store=Store(f"sqlite:///{tmp_path / name}"),
              fetcher=arrivals, notifiers={"console": Console(stream=out)})
    if before:
        before(app)
    outcomes = replay(app, arrivals, start, end, per_session=per_session)
    return app, outcomes, out.getvalue().splitlines()


def test_evaluating_the_window_once_gives_the_per_session_alerts_session_for_session(tmp_path, config, data_dir):
    window = (date(2024, 7, 1), date(2024, 9, 30))
    _, slow, slow_lines = replayed(tmp_path, config, data_dir, "slow.db", *window, per_session=True)
    _, fast, fast_lines = replayed(tmp_path, config, data_dir, "fast.db", *window, per_session=False)
    assert len(slow_lines) > 20  # a busy quarter: the comparison means something
    assert fast_lines == slow_lines
    assert [(o.session, o.status, o.queued, o.skipped, sorted(o.missing)) for o in fast] == \
        [(o.session, o.status, o.queued, o.skipped, sorted(o.missing)) for o in slow]


def test_replay_stamps_run_records_and_mutes_in_simulated_time(tmp_path, config, data_dir):
    def mute_before_the_window(app):
        app.mute("small-up", timedelta(days=7))  # at the clock's start: 2024-07-01 00:00 ET

    app, outcomes, lines = replayed(tmp_path, config, data_dir, "sim.db", date(2024, 7, 1), date(2024, 7, 31),
                                    per_session=False, before=mute_before_the_window)
    runs = {r.session: r for r in app.store.runs_list(100)}
    assert len(runs) == len(outcomes) == 22
    for session, run in runs.items():
        expected = run_time(pd.Timestamp(session), 30)
        assert run.status == "done"
        assert pd.Timestamp(run.started_at).tz_localize(None) == \
            pd.Timestamp(expected.astimezone(ET).astimezone(tz=None)).tz_convert("UTC").tz_localize(None)
    up_days = [line.split()[0] for line in lines if " small-up " in line]
    assert up_days and min(up_days) >= "2024-07-08"  # muted until 2024-07-08 00:00 ET, simulated
    assert app.store.mutes(app.clock.now()) == {}  # expired in simulated time


HYSTERESIS = """
rules:
  - id: stretched
    title: IWM stretched above its month
    when: zscore(IWM, 20) >= 2
    cooldown: 0
    resolve: true
    clear_when: zscore(IWM, 20) <= 0.5
"""


def test_replay_sends_the_resolved_notice_on_the_evening_the_rule_clears(tmp_path, config, data_dir):
    (config / "rules.yaml").write_text(HYSTERESIS)
    app, _, lines = replayed(tmp_path, config, data_dir, "resolve.db", date(2024, 1, 1), date(2024, 12, 31),
                             per_session=False)
    ev = app.evaluate().evaluation
    fired = [f"{d:%Y-%m-%d}" for d in ev.fire_dates("stretched", "2024-01-01", "2024-12-31")]
    resolved = [f"{d:%Y-%m-%d}" for d in ev.frame.sessions[ev.resolves["stretched"]] if d.year == 2024]
    assert fired and resolved
    assert [line.split()[0] for line in lines if "Resolved: IWM stretched" in line] == resolved
    assert [line.split()[0] for line in lines if "Resolved:" not in line] == fired
    # never two firings without a resolution between them
    events = sorted([(d, "fire") for d in fired] + [(d, "resolve") for d in resolved])
    kinds = [k for _, k in events]
    assert all(a != b for a, b in zip(kinds, kinds[1:]))


def test_the_fast_path_stores_every_value_known_by_the_windows_end_and_nothing_later(tmp_path, config, data_dir):
    """History is written once, up to the end of the window: all of it from before the window is there too."""
    end = date(2024, 7, 31)
    app, _, _ = replayed(tmp_path, config, data_dir, "once.db", date(2024, 7, 1), end, per_session=False)
    arrivals = Arrivals(str(data_dir))
    stored = app.store.read_observations()
    expected = {name: arrivals.known_by(app.loaded.series[name], end) for name in stored}
    assert sorted(stored) == ["DGS10", "IWM", "RSP"]  # what the rules read
    for name, frame in stored.items():
        assert frame.index.equals(expected[name].index), name
        assert frame["value"].tolist() == expected[name]["value"].tolist(), name
