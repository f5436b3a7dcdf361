"""Stale data: which series are older than their sources explain, and since when (bot.data.freshness),
and which sessions a series is expected to have a value for (bot.data.calendar.expects_value); end to end,
what a user sees of it: `status` marks it, `check` names it, one notice per stale episode."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from bot.clock import ET
from bot.daemon.replay import Arrivals
from bot.data import calendar
from bot.data.freshness import Stale, stale
from bot.settings.models import SeriesDef
from tests.apps import make_app
from tests.conftest import copy_config

IWM = SeriesDef(name="IWM", units="price", source="yahoo")
DGS10 = SeriesDef(name="DGS10", units="percent", source="treasury")
CPI = SeriesDef(name="CPIAUCSL", frequency="monthly", units="index", source="fred")
DEFS = {"IWM": IWM, "DGS10": DGS10, "CPIAUCSL": CPI}


@pytest.mark.parametrize("series,day,expected", [
    (IWM, "2024-10-14", True),  # Columbus Day: stocks trade, so do ETFs
    (DGS10, "2024-10-14", False),  # ... the bond market is closed
    (DGS10, "2024-11-11", False),  # Veterans Day
    (DGS10, "2024-10-15", True),
    (DGS10, "2024-07-03", True),  # an early close is still a session with a yield
    (CPI, "2024-07-11", False),  # monthly series follow their release calendar instead
])
def test_expects_value(series, day, expected):
    assert calendar.expects_value(series, pd.Timestamp(day)) is expected


def test_fresh_series_are_not_listed():
    # as of Friday 2026-06-12: IWM has the session, DGS10 lags one session (allowed), CPI released 2 days ago
    last = {"IWM": date(2026, 6, 12), "DGS10": date(2026, 6, 11), "CPIAUCSL": date(2026, 5, 1)}
    assert stale(DEFS, last, date(2026, 6, 12), {"CPIAUCSL": date(2026, 6, 10)}) == []


def test_an_etf_one_session_behind_is_stale_since_that_session():
    [row] = stale({"IWM": IWM}, {"IWM": date(2026, 6, 12)}, date(2026, 6, 15))
    assert row == Stale("IWM", date(2026, 6, 12), date(2026, 6, 15), 1, date(2026, 6, 15),
                        "latest 2026-06-12, expected 2026-06-15 (1 session behind as of 2026-06-15; closes are "
                        "due the evening of each session)")


def test_a_yield_two_sessions_behind_is_stale():
    [row] = stale({"DGS10": DGS10}, {"DGS10": date(2026, 6, 11)}, date(2026, 6, 15))
    assert (row.last, row.expected_by, row.sessions_behind, row.since) == (
        date(2026, 6, 11), date(2026, 6, 12), 2, date(2026, 6, 15))
    assert row.reason == ("latest 2026-06-11, expected 2026-06-12 (2 sessions behind as of 2026-06-15; yields may "
                          "lag one session)")


def test_a_bond_holiday_is_not_counted_against_a_yield():
    # Friday 2024-10-11, then Columbus Day (no yield), then Tuesday: one session behind, allowed
    assert stale({"DGS10": DGS10}, {"DGS10": date(2024, 10, 11)}, date(2024, 10, 15)) == []
    [row] = stale({"DGS10": DGS10}, {"DGS10": date(2024, 10, 11)}, date(2024, 10, 16))
    assert (row.sessions_behind, row.since) == (2, date(2024, 10, 16))


def test_a_weekend_as_of_means_the_friday_session():
    assert stale({"IWM": IWM}, {"IWM": date(2026, 6, 12)}, date(2026, 6, 14)) == []


def test_a_series_never_stored_is_stale():
    [row] = stale({"IWM": IWM}, {}, date(2026, 6, 15))
    assert (row.last, row.sessions_behind, row.reason) == (None, None, "nothing stored; expected data through "
                                                                       "2026-06-15")


def test_cpi_is_stale_when_its_next_release_is_overdue():
    released = {"CPIAUCSL": date(2026, 6, 10)}
    assert stale({"CPIAUCSL": CPI}, {"CPIAUCSL": date(2026, 5, 1)}, date(2026, 7, 20), released) == []
    [row] = stale({"CPIAUCSL": CPI}, {"CPIAUCSL": date(2026, 5, 1)}, date(2026, 7, 21), released)
    assert (row.expected_by, row.since, row.sessions_behind) == (date(2026, 7, 20), date(2026, 7, 21), None)
    assert row.reason == ("latest value is for 2026-05 (released 2026-06-10, 41 days ago); a new release was due "
                          "by 2026-07-20 (releases come about monthly; stale after 40 days)")


def test_cpi_without_a_release_date_assumes_mid_next_month():
    # the value for May is assumed out 45 days after May 1st (2026-06-15), due again 40 days later
    assert stale({"CPIAUCSL": CPI}, {"CPIAUCSL": date(2026, 5, 1)}, date(2026, 7, 24)) == []
    [row] = stale({"CPIAUCSL": CPI}, {"CPIAUCSL": date(2026, 5, 1)}, date(2026, 7, 27))
    assert "assumed released about 2026-06-15" in row.reason


def test_the_real_history_as_of_2026_06_15(data_dir, series_defs):
    from bot.data.sources import csv as csv_source
    frames = {name: csv_source.read(data_dir / f"{name}.csv") for name in series_defs}
    last = {name: f.index.max().date() for name, f in frames.items()}
    releases = {"CPIAUCSL": frames["CPIAUCSL"]["release_date"].max().date()}
    rows = {r.series: r for r in stale(series_defs, last, date(2026, 6, 15), releases)}
    assert sorted(rows) == ["DGS10", "DGS2", "IWM", "QQQ", "RSP", "SPY"]
    assert (rows["DGS10"].last, rows["DGS10"].sessions_behind) == (date(2026, 6, 11), 2)
    assert (rows["IWM"].last, rows["IWM"].sessions_behind) == (date(2026, 6, 12), 1)
    assert stale(series_defs, last, date(2026, 6, 12), releases) == []  # the evening the files were cut


@pytest.fixture
def config(tmp_path):
    return copy_config(tmp_path)


def test_stale_series_are_marked_by_status_named_by_check_and_noticed_once_per_episode(tmp_path, config,
                                                                                     data_dir):
    app, out = make_app(tmp_path, config, data_dir, datetime(2024, 7, 10, 21, 0, tzinfo=ET))

    def iwm_stops(store, loaded, names, session, today):  # IWM's feed dies after 07-08
        rows = Arrivals(str(data_dir))(store, loaded, [n for n in names if n != "IWM"], session)
        if pd.Timestamp(session) <= pd.Timestamp("2024-07-08"):
            rows += Arrivals(str(data_dir))(store, loaded, ["IWM"], session)
        return rows
    app.fetcher = iwm_stops
    for day in ("2024-07-08", "2024-07-09", "2024-07-10"):
        app.clock.set(datetime.combine(pd.Timestamp(day).date(), datetime.min.time(), ET) + timedelta(hours=21))
        app.run_session(day)
    notices = [line for line in out.getvalue().splitlines() if "notice:stale" in line]
    assert len(notices) == 1 and "IWM" in notices[0] and "small-cap-trap" in notices[0]
    status = app.status()
    assert [s.name for s in status.series if s.stale] == ["IWM"]
    assert app.check().stale[0].series == "IWM"
