"""One cleaning path: every way data enters rejects the same bad rows, each named with file:line or source date.

Ways in: a network source (`fetch`), `fetch --data-dir`, `--data-dir` on check/backtest
(`bot.data.load.observations`), and replay (`bot.data.sources.csv.read`). The files here are cut from the
real IWM history (2024-07-01 .. 2024-07-16, adjusted closes) with one defect each.
"""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
import pytest

from bot.data import load
from bot.data.fetch import update
from bot.data.sources import csv as csv_source
from bot.settings.models import SeriesDef, Settings, SourceSettings

IWM = SeriesDef(name="IWM", units="price", source="yahoo")
DGS10 = SeriesDef(name="DGS10", units="percent", source="treasury")
REAL = [("2024-07-01", "197.3381"), ("2024-07-02", "198.0148"), ("2024-07-03", "197.9658"),
        ("2024-07-05", "197.0242"), ("2024-07-08", "198.4072"), ("2024-07-09", "197.5440"),
        ("2024-07-10", "199.4763"), ("2024-07-11", "206.6463"), ("2024-07-12", "209.0592"),
        ("2024-07-15", "213.0317"), ("2024-07-16", "220.2999")]


def write(tmp_path, rows, name="IWM", header="date,value", end="\n"):
    path = tmp_path / f"{name}.csv"
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + end)
    return path


def days(frame):
    return [d.strftime("%Y-%m-%d") for d in frame.index]


def warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def with_duplicate():
    rows = list(REAL)
    rows.insert(7, ("2024-07-10", "150.00"))  # line 9: the second 2024-07-10, after line 8's real one
    return rows


# -- a date given twice ------------------------------------------------------------------------------

def test_a_duplicate_date_read_from_a_file_is_dropped_and_both_lines_named(tmp_path, caplog):
    path = write(tmp_path, with_duplicate())
    frame = csv_source.read(path)  # replay's call: no series, no today
    assert "2024-07-10" not in days(frame) and len(frame) == len(REAL) - 1
    assert warnings(caplog) == [f"{path}:8 and {path}:9: 2024-07-10 given 2 times (199.476 and 150); dropped "
                                "(neither value is trusted; fix the data)"]


def test_a_duplicate_never_makes_a_move(tmp_path):
    write(tmp_path, with_duplicate())
    values = load.observations(["IWM"], data_dir=str(tmp_path), series_defs={"IWM": IWM})["IWM"]["value"]
    move = (values.loc["2024-07-11"] / values[values.index < "2024-07-11"].iloc[-1] - 1) * 100
    assert round(move, 2) == 4.61  # 2024-07-09 -> 2024-07-11, the real two-day move; never +37.76%


def test_the_same_row_twice_is_kept_once(tmp_path, caplog):
    rows = list(REAL)
    rows.insert(7, ("2024-07-10", "199.4763"))
    frame = csv_source.read(write(tmp_path, rows))
    assert frame.loc["2024-07-10", "value"] == 199.4763 and len(frame) == len(REAL)
    assert warnings(caplog) == []


def test_fetch_data_dir_drops_the_duplicate_before_storing(tmp_path, store, caplog):
    write(tmp_path, with_duplicate())
    [result] = update(store, {"IWM": IWM}, data_dir=str(tmp_path), today=date(2024, 7, 16))
    assert result.ok and result.rows == len(REAL) - 1
    assert "2024-07-10" not in days(store.read_observations(["IWM"])["IWM"])
    assert any(w.endswith("2024-07-10 given 2 times (199.476 and 150); dropped (neither value is trusted; "
                          "fix the data)") for w in warnings(caplog))


def test_a_source_answering_a_date_twice_is_cleaned_the_same_way(httpserver, store, caplog):
    rows = [{"date": "07/11/2024", "close": "$210.43", "volume": "57,135,103"},
            {"date": "07/10/2024", "close": "$203.13", "volume": "24,587,917"},
            {"date": "07/10/2024", "close": "$150.00", "volume": "1,000"},
            {"date": "07/09/2024", "close": "$201.16", "volume": "22,113,095"}]
    httpserver.expect_request("/api/quote/IWM/historical").respond_with_json(
        {"data": {"symbol": "IWM", "tradesTable": {"rows": rows}}, "status": {"rCode": 200}})
    settings = Settings(sources={"nasdaq": SourceSettings(base_url=httpserver.url_for("").rstrip("/"))})
    series = SeriesDef(name="IWM", units="price", source="nasdaq")
    [result] = update(store, {"IWM": series}, settings, since=date(2024, 7, 1), today=date(2024, 7, 12))
    assert days(store.read_observations(["IWM"])["IWM"]) == ["2024-07-09", "2024-07-11"]
    assert "nasdaq 2024-07-10: 2024-07-10 given 2 times (203.13 and 150); dropped (neither value is trusted; " \
           "fix the data)" in warnings(caplog)
    assert result.dropped[0].startswith("1 date(s) given twice with different values dropped")


# -- values that are not prices ------------------------------------------------------------------------

def test_a_negative_price_through_data_dir_is_dropped_with_file_and_line(tmp_path, caplog):
    rows = list(REAL)
    rows[6] = ("2024-07-10", "-200.80")
    path = write(tmp_path, rows)
    frame = load.observations(["IWM"], data_dir=str(tmp_path), series_defs={"IWM": IWM})["IWM"]
    assert "2024-07-10" not in days(frame) and frame.loc["2024-07-11", "value"] == 206.6463
    assert warnings(caplog) == [f"{path}:8: 2024-07-10 value -200.8 is not positive (a price must be > 0); dropped"]


def test_a_negative_yield_is_a_yield(tmp_path, caplog):
    path = write(tmp_path, [("2020-08-03", "0.52"), ("2020-08-04", "-0.01"), ("2020-08-05", "0.05")], "DGS10")
    assert len(csv_source.read(path, series=DGS10)) == 3 and warnings(caplog) == []


def test_a_value_that_is_not_a_number_is_dropped_with_file_and_line(tmp_path, caplog):
    rows = list(REAL)
    rows[3] = ("2024-07-05", '"197,02"')  # a decimal comma, quoted as a spreadsheet writes it
    path = write(tmp_path, rows)
    frame = csv_source.read(path, series=IWM)
    assert "2024-07-05" not in days(frame) and len(frame) == len(REAL) - 1
    assert warnings(caplog) == [f"{path}:5: value '197,02' is not a number; dropped"]


def test_an_empty_or_dot_value_is_a_missing_day_not_a_warning(tmp_path, caplog):
    rows = list(REAL)
    rows[3], rows[4] = ("2024-07-05", ""), ("2024-07-08", ".")
    frame = csv_source.read(write(tmp_path, rows), series=IWM)
    assert len(frame) == len(REAL) - 2 and warnings(caplog) == []


def test_a_date_after_today_is_dropped(tmp_path, caplog):
    path = write(tmp_path, REAL)
    frame = load.observations(["IWM"], data_dir=str(tmp_path), series_defs={"IWM": IWM},
                              today=date(2024, 7, 12))["IWM"]
    assert days(frame)[-1] == "2024-07-12"
    assert warnings(caplog) == [f"{path}:11: 2024-07-15 is after today (2024-07-12); dropped",
                                f"{path}:12: 2024-07-16 is after today (2024-07-12); dropped"]


def test_a_one_day_spike_in_a_file_is_dropped(tmp_path, caplog):
    rows = list(REAL)
    rows[6] = ("2024-07-10", "399.4763")  # a doubled price that the next day undoes
    path = write(tmp_path, rows)
    frame = csv_source.read(path, series=IWM)
    assert "2024-07-10" not in days(frame)
    assert warnings(caplog) == [f"{path}:8: 2024-07-10 value 399.476 jumps more than 25% from its neighbours; "
                                "dropped"]


# -- a file cut mid-line -------------------------------------------------------------------------------

def test_a_last_line_cut_mid_number_is_dropped(tmp_path, caplog):
    rows = list(REAL[:10]) + [("2024-07-16", "220")]  # "220.2999" cut after three characters
    path = write(tmp_path, rows, end="")
    frame = csv_source.read(path)
    assert days(frame)[-1] == "2024-07-15"
    assert warnings(caplog) == [f"{path}:12: last line '2024-07-16,220' value '220' has fewer decimals than the "
                                "rows above; it has no newline at the end, so the file was most likely cut while "
                                "written or copied; dropped"]


@pytest.mark.parametrize("last,why", [
    ("2024-07-16", "has 1 of the header's 2 fields"),
    ("2024-07-16,", "leaves value empty where every row above fills it"),
    ("2024-07-16,220.", "value '220.' has fewer decimals than the rows above"),
], ids=["no value", "empty value", "cut after the point"])
def test_other_cuts_of_the_last_line_are_dropped(tmp_path, caplog, last, why):
    path = tmp_path / "IWM.csv"
    path.write_text("date,value\n" + "\n".join(",".join(r) for r in REAL[:10]) + "\n" + last)
    assert days(csv_source.read(path))[-1] == "2024-07-15"
    assert warnings(caplog)[0].startswith(f"{path}:12: last line {last!r} {why}; ")


def test_a_whole_last_line_without_a_newline_is_kept(tmp_path, caplog):
    path = write(tmp_path, REAL, end="")
    assert days(csv_source.read(path))[-1] == "2024-07-16" and warnings(caplog) == []


def test_a_cut_release_date_drops_the_last_cpi_row(tmp_path, caplog):
    path = tmp_path / "CPIAUCSL.csv"
    path.write_text("date,value,release_date\n2024-04-01,313.023,2024-05-15\n2024-05-01,313.175,2024-06-12\n"
                    "2024-06-01,313.044,2024-07-1")
    frame = csv_source.read(path)
    assert days(frame) == ["2024-04-01", "2024-05-01"]
    assert warnings(caplog)[0].startswith(f"{path}:4: last line '2024-06-01,313.044,2024-07-1' ")


def test_the_shipped_history_ends_with_newlines_and_reads_without_a_warning(data_dir, series_defs, caplog):
    for name, series in series_defs.items():
        path = data_dir / f"{name}.csv"
        assert path.read_bytes().endswith(b"\n"), path
        csv_source.read(path, series=series, today=date(2026, 6, 15))
    assert warnings(caplog) == []


def test_a_bad_date_is_still_an_error_naming_file_and_line(tmp_path):
    from bot.errors import DataError
    rows = list(REAL)
    rows[2] = ("07/03/2024", "197.9658")
    path = write(tmp_path, rows)
    with pytest.raises(DataError, match=f"^{path}:4: date '07/03/2024' is not YYYY-MM-DD$"):
        csv_source.read(path)


# -- the fast path ---------------------------------------------------------------------------------------

def test_the_shipped_history_takes_the_fast_path_and_reads_as_the_careful_path_does(data_dir, series_defs):
    for name in series_defs:
        path = data_dir / f"{name}.csv"
        raw = path.read_bytes()
        fast = csv_source._fast(raw)
        assert fast is not None, path
        quick = csv_source._frame(path, *fast)
        careful = csv_source._frame(path, *csv_source._careful(path, raw.decode()))
        pd.testing.assert_frame_equal(quick, careful)
        pd.testing.assert_series_equal(quick.attrs["lines"]["lines"], careful.attrs["lines"]["lines"])


@pytest.mark.parametrize("text", [
    "date,value\n2024-07-10,199.4763\n2024-07-10,150.00\n",  # a date twice
    "date,value\n2024-07-11,206.6463\n2024-07-10,199.4763\n",  # out of order
    "date,value\n2024-07-10,.\n",  # missing
    "date,value\n2024-07-10, 199.4763\n",  # a space
    "date,value\r\n2024-07-10,199.4763\r\n",  # Windows line ends
    "date,value\n2024-07-10,199.4763\n\n2024-07-11,206.6463\n",  # a blank line
    "date,value\n2024-07-10,199.4763",  # no newline at the end
    "date,value\n2024-07-10,nan\n",  # not a number
    "Date,Value\n2024-07-10,199.4763\n",  # another header spelling
    "date,value,release_date\n2024-06-01,313.044\n",  # a field short
], ids=["duplicate", "order", "missing", "space", "crlf", "blank", "unterminated", "nan", "header", "short"])
def test_anything_unusual_is_read_by_the_careful_path(text):
    assert csv_source._fast(text.encode()) is None
