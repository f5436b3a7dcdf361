"""The schedule: one run per NYSE session at its close plus the offset, in New York time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from bot.app.schedule import next_run, run_time, sessions_due
from bot.daemon.trigger import SessionCloseTrigger
from bot.data import calendar
from bot.data.calendar import ET


@pytest.fixture(scope="module")
def xnys():
    import warnings
    import exchange_calendars as xc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xc.get_calendar("XNYS", start="2023-12-01", end="2027-01-31")


def test_every_session_of_2024_to_2026_runs_at_its_close_plus_the_offset(xnys):
    sessions = xnys.sessions_in_range("2024-01-01", "2026-12-31")
    assert len(sessions) > 700
    for session in sessions:
        close = xnys.session_close(session).tz_convert(ET).to_pydatetime()
        assert run_time(session, 30) == close + timedelta(minutes=30), session


def test_the_trigger_fires_exactly_once_per_session_and_never_on_other_days(xnys):
    trigger = SessionCloseTrigger(30)
    fire = trigger.get_next_fire_time(None, datetime(2024, 1, 1, tzinfo=ET))
    fired = []
    while fire.year < 2027:
        fired.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    expected = xnys.sessions_in_range("2024-01-01", "2026-12-31")
    assert [f.date() for f in fired] == [s.date() for s in expected]


@pytest.mark.parametrize("day,expected", [
    ("2024-07-03", "13:30 EDT"),  # early close before Independence Day
    ("2024-11-29", "13:30 EST"),  # the day after Thanksgiving
    ("2024-12-24", "13:30 EST"),
    ("2024-03-08", "16:30 EST"),  # the Friday before DST starts
    ("2024-03-11", "16:30 EDT"),  # the Monday after
    ("2024-11-01", "16:30 EDT"),
    ("2024-11-04", "16:30 EST"),
])
def test_early_closes_and_dst(day, expected):
    assert run_time(day, 30).strftime("%H:%M %Z") == expected


def test_no_run_on_a_holiday_the_next_is_the_following_session():
    session, when = next_run(datetime(2024, 7, 4, 9, 0, tzinfo=ET), 30)
    assert f"{session:%Y-%m-%d}" == "2024-07-05" and when.hour == 16


def test_the_offset_is_a_setting():
    assert run_time("2024-07-11", 45).strftime("%H:%M") == "16:45"


def test_sessions_due_after_an_outage_are_the_missed_ones_in_order():
    now = datetime(2024, 7, 12, 18, 0, tzinfo=ET)  # Friday evening
    due = sessions_due(now, 30, after=pd.Timestamp("2024-07-08").date(), limit=5)
    assert [f"{d:%m-%d}" for d in due] == ["07-09", "07-10", "07-11", "07-12"]


def test_sessions_due_keeps_only_the_newest_when_the_outage_is_long():
    now = datetime(2024, 7, 12, 18, 0, tzinfo=ET)
    due = sessions_due(now, 30, after=pd.Timestamp("2024-06-01").date(), limit=3)
    assert [f"{d:%m-%d}" for d in due] == ["07-10", "07-11", "07-12"]


def test_a_session_is_not_due_before_its_run_time():
    now = datetime(2024, 7, 12, 16, 10, tzinfo=ET)
    due = sessions_due(now, 30, after=pd.Timestamp("2024-07-10").date(), limit=5)
    assert [f"{d:%m-%d}" for d in due] == ["07-11"]
    assert calendar.is_session("2024-07-12")


def test_a_calendar_cache_miss_is_built_in_a_child_so_the_daemon_never_imports_exchange_calendars(tmp_path):
    import subprocess
    import sys
    from tests.conftest import ROOT, subprocess_env
    code = ("import sys; from bot.data import calendar; calendar.sessions('2024-01-01', '2024-12-31'); "
            "print('exchange_calendars' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=subprocess_env(CLOSEBELL_HOME=tmp_path / "home"))
    assert proc.stdout.strip() == "False", proc.stderr
    assert list((tmp_path / "home" / "cache").glob("xnys-*.npz"))
