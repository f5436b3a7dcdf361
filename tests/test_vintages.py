"""Point in time for values: first prints and revisions (vintages), kept apart from the day each became known.

June 2024 CPI (FRED CPIAUCSL) is the case in point: printed on 2024-07-11 at
313.049 against May's 313.225 (−0.056% month on month, the "−0.1%" the market
saw), and since the February 2026 seasonal revision 313.044 against 313.175
(−0.042%). A rule with its threshold between the two fires on one history and
not on the other.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.data.clean import clean
from bot.data.sources import get_source
from bot.data.sources import csv as csv_source
from bot.data.sources.base import known_by, observations
from bot.engine.frame import monthly_on_sessions
from bot.settings.models import SourceSettings
from bot.store import Store
from bot.store import schema

FIXTURES = Path(__file__).parent / "fixtures" / "sources"

# (period, value, release date, realtime start): FRED's vintages of 2024-04..06, first print first
VINTAGES = [("2024-04-01", 313.207, "2024-05-15", "2024-05-15"), ("2024-04-01", 313.023, "2024-05-15", "2026-02-13"),
            ("2024-05-01", 313.225, "2024-06-12", "2024-06-12"), ("2024-05-01", 313.175, "2024-06-12", "2026-02-13"),
            ("2024-06-01", 313.049, "2024-07-11", "2024-07-11"), ("2024-06-01", 313.044, "2024-07-11", "2026-02-13")]

SOFT_RULE = """\
rules:
  - id: soft-cpi-rotation
    title: Soft CPI print, small caps beat large caps
    params: {soft: -0.05}   # between the first print (-0.056) and the revised value (-0.042)
    when:
      all:
        - released(CPIAUCSL)
        - mom_pct(CPIAUCSL) <= soft
        - pct_change(IWM, 1) - pct_change(SPY, 1) >= 2
    cooldown: 0
    benchmark: IWM
    direction: up
"""


def vintage_rows(rows=VINTAGES):
    days, values, releases, starts = zip(*rows)
    return observations(days, values, releases, realtime_starts=starts)


def mom_on(table, *days):
    sessions = pd.DatetimeIndex(pd.to_datetime(list(days)))
    monthly = monthly_on_sessions(table, sessions)
    return [round(v, 4) for v in monthly.mom], monthly.revised.tolist()


# -- the frame: ALFRED's real-time semantics ------------------------------------------------------------------

@pytest.mark.parametrize("day, mom, revised", [
    ("2024-07-10", 0.0057, False),   # May's first print against April's
    ("2024-07-11", -0.0562, False),  # June's first print, the day it came out
    ("2025-06-02", -0.0562, False),  # still the first prints: no revision known yet
    ("2026-02-13", -0.0418, False),  # the seasonal revision, from the day it was published
])
def test_the_frame_on_a_day_uses_the_latest_vintage_known_that_day(day, mom, revised):
    assert mom_on(vintage_rows(), day) == ([mom], [revised])


def test_a_value_not_known_on_the_day_stands_in_and_is_marked_revised():
    # only the current vintage is stored (a backfill on 2026-06-12): it stands in before it was known
    rows = [(d, v, r, "2026-06-12") for d, v, r, s in VINTAGES if s == "2026-02-13"]
    assert mom_on(vintage_rows(rows), "2024-07-11", "2026-06-12") == ([-0.0418, -0.0418], [True, False])


def test_a_file_without_realtime_start_reads_as_before_and_is_marked_revised(data_dir):
    table = csv_source.read(data_dir / "CPIAUCSL.csv")
    assert mom_on(table, "2024-07-11") == ([-0.0418], [True])


def test_known_by_keeps_the_vintages_known_on_the_day_and_the_stand_in():
    table = vintage_rows()
    on = known_by(table, date(2024, 7, 11))
    assert on["value"].tolist() == [313.207, 313.225, 313.049]
    backfill = vintage_rows([(d, v, r, "2026-06-12") for d, v, r, s in VINTAGES if s == "2026-02-13"])
    assert known_by(backfill, date(2024, 7, 11))["value"].tolist() == [313.023, 313.175, 313.044]


# -- files: a realtime_start column, one row per vintage --------------------------------------------------------

def test_a_csv_may_give_a_period_once_per_vintage(tmp_path, caplog):
    path = tmp_path / "CPIAUCSL.csv"
    path.write_text("date,value,release_date,realtime_start\n"
                    "2024-05-01,313.225,2024-06-12,2024-06-12\n"
                    "2024-05-01,313.175,,2026-02-13\n"      # a revision: its period's release date is the first's
                    "2024-06-01,313.049,,2024-07-11\n"      # no release date: its first realtime_start
                    "2024-06-01,313.044,2024-07-11,2026-02-13\n"
                    "2024-07-01,313.5,2024-08-14,2024-08-14\n"
                    "2024-07-01,313.6,2024-08-14,2024-08-14\n")  # one vintage given twice: neither trusted
    table = csv_source.read(path)
    assert [(f"{d:%Y-%m}", v, f"{r:%m-%d}", f"{s:%Y-%m-%d}") for d, v, r, s in
            zip(table.index, table["value"], table["release_date"], table["realtime_start"])] == [
        ("2024-05", 313.225, "06-12", "2024-06-12"), ("2024-05", 313.175, "06-12", "2026-02-13"),
        ("2024-06", 313.049, "07-11", "2024-07-11"), ("2024-06", 313.044, "07-11", "2026-02-13")]
    assert "2024-07-01 given 2 times (313.5 and 313.6); dropped" in caplog.text
    assert f"{path}:6 and {path}:7" in caplog.text


# -- FRED with a key: every vintage -----------------------------------------------------------------------------

def test_fred_vintages_through_the_store_give_first_prints_and_revisions(httpserver, monkeypatch, store):
    monkeypatch.setenv("FRED_API_KEY", "k" * 32)
    httpserver.expect_request("/fred/series/observations", query_string={
        "series_id": "CPIAUCSL", "api_key": "k" * 32, "file_type": "json", "observation_start": "2024-04-01",
        "observation_end": "2024-06-30", "realtime_start": "1776-07-04", "realtime_end": "9999-12-31"}
    ).respond_with_data((FIXTURES / "fred_api_CPIAUCSL_vintages.json").read_bytes(),
                        content_type="application/json")
    fred = get_source("fred", SourceSettings(base_url=httpserver.url_for("").rstrip("/"), timeout=5.0))
    fetched, _ = clean(fred.fetch("CPIAUCSL", date(2024, 4, 1), date(2024, 6, 30), monthly=True))
    assert store.write_observations("CPIAUCSL", fetched, "fred", first_seen=date(2026, 6, 12)) == 3
    assert store.write_observations("CPIAUCSL", fetched, "fred", first_seen=date(2026, 6, 12)) == 0
    stored = store.read_observations(["CPIAUCSL"])["CPIAUCSL"]
    assert mom_on(stored, "2024-07-11", "2026-02-13") == ([-0.0562, -0.0418], [False, False])
    on = store.read_observations(["CPIAUCSL"], known_by=date(2024, 7, 11))["CPIAUCSL"]
    assert on["value"].tolist() == [313.207, 313.225, 313.049]


# -- the store: a revision adds a vintage, never overwrites one --------------------------------------------------

def test_without_a_key_the_first_value_seen_stays_the_first_vintage(store):
    """A keyless fetch sees only the current value: the first one seen is kept, a change adds a vintage."""
    june = observations(["2024-05-01", "2024-06-01"], [313.225, 313.049])
    assert store.write_observations("CPIAUCSL", june, "fred", first_seen=date(2024, 7, 11)) == 2
    assert store.write_observations("CPIAUCSL", june, "fred", first_seen=date(2024, 7, 12)) == 0
    revised = observations(["2024-05-01", "2024-06-01"], [313.175, 313.044])
    assert store.write_observations("CPIAUCSL", revised, "fred", first_seen=date(2026, 2, 13)) == 2
    stored = store.read_observations(["CPIAUCSL"])["CPIAUCSL"]
    assert [(f"{d:%Y-%m}", v, f"{s:%Y-%m-%d}") for d, v, s in
            zip(stored.index, stored["value"], stored["realtime_start"])] == [
        ("2024-05", 313.225, "2024-07-11"), ("2024-05", 313.175, "2026-02-13"),
        ("2024-06", 313.049, "2024-07-11"), ("2024-06", 313.044, "2026-02-13")]
    assert (stored["release_date"] == pd.Timestamp("2024-07-11")).all()
    assert mom_on(stored, "2024-07-11", "2026-02-13") == ([-0.0562, -0.0418], [False, False])
    # a daily series keeps one vintage: a changed close replaces the old one
    store.write_observations("IWM", observations(["2024-07-11"], [210.43]), "yahoo")
    store.write_observations("IWM", observations(["2024-07-11"], [209.9]), "yahoo")
    assert store.read_observations(["IWM"])["IWM"]["value"].tolist() == [209.9]


def test_first_prints_learnt_later_go_before_the_values_already_stored(store):
    """A store filled with revised values (no key, a backfill) gets FRED's vintages: the first prints slot in
    before them, and the same value seen again only moves its vintage earlier."""
    current = observations(["2024-05-01", "2024-06-01"], [313.175, 313.044], ["2024-06-12", "2024-07-11"])
    store.write_observations("CPIAUCSL", current, "csv", first_seen=date(2026, 6, 12))
    assert mom_on(store.read_observations(["CPIAUCSL"])["CPIAUCSL"], "2024-07-11") == ([-0.0418], [True])
    store.write_observations("CPIAUCSL", vintage_rows(VINTAGES[2:]), "fred")
    stored = store.read_observations(["CPIAUCSL"])["CPIAUCSL"]
    assert stored["realtime_start"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-06-12", "2026-02-13", "2024-07-11", "2026-02-13"]
    assert mom_on(stored, "2024-07-11") == ([-0.0562], [False])
    fresh = Store(store.url)  # another process reads the same vintages
    try:
        pd.testing.assert_frame_equal(fresh.read_observations(["CPIAUCSL"])["CPIAUCSL"], stored)
    finally:
        fresh.close()


def test_migration_v5_dates_old_rows_by_when_the_bot_held_them(store_url):
    """Old monthly rows: written on their release day (or the evening after, UTC) -> first prints, known from
    the release date; written later (a backfill) -> known from the day written. Daily rows: NULL."""
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        for step in schema.MIGRATIONS[:4]:
            step(conn)
        conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', '4')"))
        old = sa.table("observations", *(sa.column(c) for c in (
            "series", "date", "value", "release_date", "source", "fetched_at")))
        conn.execute(old.insert(), [
            dict(series="CPIAUCSL", date=date(2024, 6, 1), value=313.049, release_date=date(2024, 7, 11),
                 source="fred", fetched_at=datetime(2024, 7, 12, 0, 30, tzinfo=timezone.utc)),
            dict(series="CPIAUCSL", date=date(2024, 5, 1), value=313.175, release_date=date(2024, 6, 12),
                 source="csv", fetched_at=datetime(2026, 6, 12, 20, 0, tzinfo=timezone.utc)),
            dict(series="IWM", date=date(2024, 7, 11), value=210.43, release_date=None, source="yahoo",
                 fetched_at=datetime(2024, 7, 11, 21, 0, tzinfo=timezone.utc))])
    engine.dispose()
    store = Store(store_url)
    try:
        assert store.version() == schema.VERSION
        cpi = store.read_observations(["CPIAUCSL"])["CPIAUCSL"]
        assert cpi["realtime_start"].dt.strftime("%Y-%m-%d").tolist() == ["2026-06-12", "2024-07-11"]
        assert store.read_observations(["IWM"])["IWM"]["realtime_start"].isna().all()
    finally:
        store.close()


# -- the proof: a revision flips a CPI rule, through the CLI ---------------------------------------------------

@pytest.fixture
def histories(tmp_path, data_dir):
    """Two data directories of the real history: CPI as revised (the shipped file), and the same file with
    the first prints of 2024-04..06 as earlier vintages (`realtime_start` column)."""
    revised, vintaged = tmp_path / "revised", tmp_path / "vintaged"
    for folder in (revised, vintaged):
        folder.mkdir()
        for name in ("IWM", "SPY"):
            (folder / f"{name}.csv").symlink_to(data_dir / f"{name}.csv")
    (revised / "CPIAUCSL.csv").symlink_to(data_dir / "CPIAUCSL.csv")
    firsts = {d: (v, r) for d, v, r, s in VINTAGES if s == r}
    lines = ["date,value,release_date,realtime_start"]
    for line in (data_dir / "CPIAUCSL.csv").read_text().splitlines()[1:]:
        day, value, release = line.split(",")
        if day in firsts:
            lines.append(f"{day},{firsts[day][0]},{release},{release}")
            lines.append(f"{day},{value},{release},2026-02-13")
        else:
            lines.append(f"{day},{value},{release},")
    (vintaged / "CPIAUCSL.csv").write_text("\n".join(lines) + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(SOFT_RULE)
    return revised, vintaged, rules


def cli(capsys, *args) -> dict:
    assert main([*map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_revision_flips_the_soft_cpi_rule_between_first_prints_and_revised_history(histories, capsys):
    revised, vintaged, rules = histories
    window = ("--from", "2024-07-01", "--to", "2024-07-31")
    first = cli(capsys, "backtest", "--rules", rules, "--data-dir", vintaged, *window)
    late = cli(capsys, "backtest", "--rules", rules, "--data-dir", revised, *window)
    assert first["rules"]["soft-cpi-rotation"]["fires"] == ["2024-07-11"]  # on the -0.056% the market saw
    assert late["rules"]["soft-cpi-rotation"]["fires"] == []                # not on the revised -0.042%
    assert late["revised"] == ["CPIAUCSL: revised values throughout (no first print known; FRED_API_KEY or "
                               "a realtime_start column gives them)"]
    # check on the day agrees with the backtest on each history
    for folder, fires in ((vintaged, True), (revised, False)):
        day = cli(capsys, "check", "--rules", rules, "--data-dir", folder, "--date", "2024-07-11")
        assert day["rules"]["soft-cpi-rotation"]["fires"] is fires, folder
    why = cli(capsys, "explain", "soft-cpi-rotation", "--rules", rules, "--data-dir", vintaged,
              "--date", "2024-07-11")
    assert why["fired"] is True
    # the year-ago month that yoy_pct would read is still an undated (revised) value in this file
    assert why["revised"] == [why["revised"][0]] and why["revised"][0].startswith("CPIAUCSL: revised values")


def test_the_flip_through_the_store(histories, capsys, monkeypatch, tmp_path):
    """fetch the revised history into the store, then the vintages: backtest from the store fires on the first
    print, and says the values before the fetch day are revised."""
    revised, vintaged, rules = histories
    assert main(["fetch", "--data-dir", str(revised), "--series", "CPIAUCSL", "IWM", "SPY"]) == 0
    assert main(["fetch", "--data-dir", str(vintaged), "--series", "CPIAUCSL", "--since", "2024-01-01"]) == 0
    capsys.readouterr()
    body = cli(capsys, "backtest", "--rules", rules, "--from", "2024-07-01", "--to", "2024-07-31")
    assert body["rules"]["soft-cpi-rotation"]["fires"] == ["2024-07-11"]
    assert len(body["revised"]) == 1 and body["revised"][0].startswith("CPIAUCSL: revised values ")
    text = main(["backtest", "--rules", str(rules), "--from", "2024-07-01", "--to", "2024-07-31"])
    out = capsys.readouterr().out
    assert text == 0 and out.count("note: CPIAUCSL: revised values") == 1
