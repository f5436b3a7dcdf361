"""The cleaning path's small rules, one row per case, where `make mutate` found changes no test noticed.

Each table here failed on surviving mutants (README, "Tests"): the spike walk (a spike that reverts, one
that holds, two in a row, the newest value, a move of exactly the limit, a price's % against a yield's
points), a file's value text, how far back a cut last line is compared, and `clean` itself: each check's
boundary, the summary line `fetch` shows for it, and the warning (or info line) that names the source and date.
"""

from __future__ import annotations

import logging
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from bot.data.clean import _decimals, _spikes, clean, cut_last_line, outside_dates, parse_value
from bot.data.sources.base import observations
from bot.settings.models import SeriesDef


@pytest.mark.parametrize("values, units, limit, previous, spikes", [
    ([100, 100, 150, 100, 100], "price", 20, None, [2]),  # +50% and back: a spike
    ([100, 100, 150, 150, 150], "price", 20, None, []),  # +50% and it stays: a real move
    ([100, 100, 150], "price", 20, None, [2]),  # the newest value jumps: nothing confirms it yet
    ([1, 1, 5, 5], "points", 1, None, []),  # the newest confirms the one before it
    ([150, 100, 100], "price", 20, 100.0, [0]),  # the first new day, judged against the stored value
    ([150, 150, 100], "price", 20, 150.0, [2]),  # ... which it matches: only the newest drop is suspect
    ([13, 10, 10], "price", 20, 10.0, [0]),  # ... in % for a price
    ([100, 150, 150, 100, 150, 150], "price", 20, None, [3]),  # back to the first value is still a jump
    ([10, 10, 13, 10, 10], "price", 20, None, [2]),  # a price moves in %: +30% (3 points) is past 20
    ([4.0, 4.0, 6.0, 4.0], "points", 1, None, [2]),  # a yield moves in points
    ([1, 1, 2, 1], "points", 1, None, []),  # exactly the limit is not past it
    ([100, 100, 119.9, 96], "price", 20, None, []),  # +19.9% and -19.9%: each within 20%
    ([1, 1, 2.5, 1.5], "points", 1, None, []),  # past it, but the next day moves back exactly the limit
    ([100, 150, 60, 100], "price", 20, None, [1, 2]),  # two spikes in a row, each against the last kept
    ([1, 1, 5, 1, 5, 1, 1], "points", 1, None, [2, 4]),  # two spikes apart
    ([1, 5, 1, 5, 1, 5, 1], "points", 1, None, [1, 3, 5]),
    ([1, 1, 5, 2, 3.5], "points", 1, None, [2, 4]),  # after a spike, exactly the limit from the last kept
    ([150, 100, 150], "price", 20, 100.0, [0, 2]),  # the first day against the stored value, not the newest
])
def test_a_spike_is_a_jump_past_the_limit_that_reverses(values, units, limit, previous, spikes):
    found = _spikes(np.array(values, dtype=float), units, limit, previous)
    assert np.flatnonzero(found).tolist() == spikes


@pytest.mark.parametrize("text, value", [
    ("", math.nan),
    ("  ", math.nan),
    (".", math.nan),
    ("203.12", 203.12),
    (" -0.5 ", -0.5),
    ("1e3", 1000.0),
    ("abc", None),
    ("1,5", None),
    ("..", None),
    ("n/a", None),
])
def test_a_files_value_text_is_a_number_missing_or_not_a_number(text, value):
    parsed = parse_value(text)
    if value is None:
        assert parsed is None
    elif math.isnan(value):
        assert parsed is not None and math.isnan(parsed)
    else:
        assert parsed == value


@pytest.mark.parametrize("text, places", [
    ("203.1200", 4),
    ("200", 0),
    ("200.", 0),
    (".5", 1),
    (" 4.25 ", 2),
])
def test_decimals_count_the_digits_after_the_point(text, places):
    assert _decimals(text) == places


HEADER = ["date", "value", "release_date"]


def rows(n, release="2024-02-13"):
    return [[f"2024-01-{k + 1:02d}", "310.3260", release] for k in range(n)]


VINTAGES = HEADER + ["realtime_start"]


@pytest.mark.parametrize("header, above, last, why", [
    # the last 20 rows fill release_date: a last line leaving it empty was cut
    (HEADER, [["2023-12-29", "310.3260", ""]] + rows(20), ["2024-01-30", "310.3260", ""], "leaves release_date empty"),
    # one of the last 20 leaves it empty too: empty is normal in this file
    (HEADER, [["2023-12-29", "310.3260", ""]] + rows(19), ["2024-01-30", "310.3260", ""], None),
    # a row above without the column at all does not make it required
    (HEADER, rows(5) + [["2024-01-29", "310.3260"]], ["2024-01-30", "310.3260", ""], None),
    (HEADER, rows(5) + [["2024-01-29"]], ["2024-01-30", "310.3260", "2024-02-13"], None),  # nor the value
    (HEADER, rows(5), ["2024-01-30", "310.326", "2024-02-13"], "fewer decimals"),
    (HEADER, rows(5), ["2024-01-30", "310.3260", "2024-02-13"], None),
    (HEADER, rows(5), ["2024-01-3", "310.3260", "2024-02-13"], "date '2024-01-3' is not a whole"),
    (HEADER, rows(5), ["2024-01-30", "310.3260", "2024-02-1"], "release_date '2024-02-1' is not a whole"),
    (VINTAGES, [r + ["2024-02-13"] for r in rows(5)], ["2024-01-30", "310.3260", "2024-02-13", "2024-02-1"],
     "realtime_start '2024-02-1' is not a whole"),
])
def test_a_cut_last_line_is_judged_against_the_twenty_rows_above_it(header, above, last, why):
    reason = cut_last_line(last, above, header)
    if why is None:
        assert reason is None
    else:
        assert reason is not None and why in reason


@pytest.mark.parametrize("text, kept", [
    ("1899-12-31", False),  # before EARLIEST_DATE
    ("1900-01-01", True),
    ("2199-12-31", True),
    ("2200-01-01", False),  # after LATEST_DATE
    ("1600-01-03", False),
    ("2024-07-1", True),  # not a whole date: the reader reports it as such, not here
    ("yesterday", True),
    (None, True),  # an empty cell
])
def test_a_date_outside_the_years_pandas_holds_is_dropped_with_its_line(text, kept):
    texts = pd.Series(["2024-07-10", text, "2024-07-12"], dtype=object)
    keep, rejections = outside_dates(texts, "date", "data/IWM.csv", pd.Series([2, 3, 4]))
    assert keep.dtype == bool and keep.tolist() == [True, kept, True]
    assert [str(r) for r in rejections] == ([] if kept else [
        f"data/IWM.csv:3: date {text} is outside 1900-01-01..2199-12-31; dropped"])


# -- clean(): what each check drops, the summary line `fetch` shows, the warning that names the row -----------

IWM = SeriesDef(name="IWM", units="price", source="nasdaq")
DGS10 = SeriesDef(name="DGS10", units="percent", source="treasury")
CPI = SeriesDef(name="CPIAUCSL", units="index", frequency="monthly", source="fred")


def source(rows):
    """A network source's frame: (date, value) or (date, value, release_date) rows, no origin of its own."""
    return observations([r[0] for r in rows], [r[1] for r in rows], [r[2] if len(r) > 2 else None for r in rows])


def messages(caplog, level=logging.WARNING):
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == "bot.data.clean"]


def test_every_row_dropped_is_warned_with_its_source_and_date_in_the_order_checked(caplog):
    """One answer with one row of each kind: every kind's warning survives the checks after it, each names the
    source and date (a source's frame has no origin of its own: `fetch` passes the source's name)."""
    frame = source([("2024-07-01", 197.34), ("2024-07-02", 198.01), ("2024-07-02", 150.0),
                    ("2024-07-03", 197.97, "2024-07-02"), ("2024-07-05", 1e16), ("2024-07-08", -5.0),
                    ("2024-07-09", 197.54), ("2024-07-10", 399.48), ("2024-07-11", 206.65),
                    ("2024-07-12", 209.06), ("2024-07-15", 213.0)])
    kept, reasons = clean(frame, IWM, date(2024, 7, 12), origin="nasdaq")
    assert [f"{d:%Y-%m-%d}" for d in kept.index] == ["2024-07-01", "2024-07-09", "2024-07-11", "2024-07-12"]
    assert reasons == ["1 date(s) given twice with different values dropped (2024-07-02)",
                       "1 row(s) dated after today (2024-07-12) dropped",
                       "1 value(s) released before their own period dropped",
                       "1 absurd value(s) dropped",
                       "1 non-positive value(s) rejected (2024-07-08)",
                       "1 implausible jump(s) rejected (2024-07-10=399.48; limit 25% a day)"]
    assert messages(caplog) == [
        "nasdaq 2024-07-02: 2024-07-02 given 2 times (198.01 and 150); dropped (neither value is trusted; "
        "fix the data)",
        "nasdaq 2024-07-15: 2024-07-15 is after today (2024-07-12); dropped",
        "nasdaq 2024-07-03: 2024-07-03 released on 2024-07-02, before the period it describes; dropped "
        "(fix its release_date)",
        "nasdaq 2024-07-05: 2024-07-05 value 1e+16 is no market's number (subnormal, or beyond 1e+15); dropped",
        "nasdaq 2024-07-08: 2024-07-08 value -5 is not positive (a price must be > 0); dropped",
        "nasdaq 2024-07-10: 2024-07-10 value 399.48 jumps more than 25% from its neighbours; dropped"]


TINY = float(np.finfo(float).tiny)  # the smallest normal float: dividing by it is still finite


@pytest.mark.parametrize("series, rows, previous, dropped, reasons", [
    # four dates given twice: the summary names the first three
    (None, [(f"2024-07-{d:02d}", v) for d in (8, 9, 10, 11) for v in (200.0, 150.0)] + [("2024-07-12", 209.06)],
     None, ["2024-07-08", "2024-07-09", "2024-07-10", "2024-07-11"],
     ["4 date(s) given twice with different values dropped (2024-07-08, 2024-07-09, 2024-07-10)"]),
    (None, [("2024-07-10", 199.48), ("2024-07-11", None), ("2024-07-12", None)], None,
     ["2024-07-11", "2024-07-12"], ["2 missing value(s) ('.' or empty) skipped"]),
    # a monthly value is released after its period begins; on its first day at the earliest
    (CPI, [("2024-05-01", 313.175, "2024-06-12"), ("2024-06-01", 313.044, "2024-05-15"),
           ("2024-07-01", 313.534, "2024-07-01")], None,
     ["2024-06-01"], ["1 value(s) released before their own period dropped"]),
    # subnormal or beyond 1e15 is no market's number; zero, the smallest normal float and 1e15 itself are
    (None, [("2024-07-01", 0.0), ("2024-07-02", 1e-320), ("2024-07-03", TINY), ("2024-07-05", 1e15),
            ("2024-07-08", 1.5e15), ("2024-07-09", -1e16)], None,
     ["2024-07-02", "2024-07-08", "2024-07-09"], ["3 absurd value(s) dropped"]),
    # a price must be > 0, and a price under 1 is a price: the summary names the first three of four
    (IWM, [("2024-07-01", 0.5), ("2024-07-02", 0.0), ("2024-07-03", -0.01), ("2024-07-05", 0.52),
           ("2024-07-08", 0.0), ("2024-07-09", 0.0), ("2024-07-10", 0.51)], None,
     ["2024-07-02", "2024-07-03", "2024-07-08", "2024-07-09"],
     ["4 non-positive value(s) rejected (2024-07-02, 2024-07-03, 2024-07-08)"]),
    (CPI, [("2024-05-01", 313.175), ("2024-06-01", 0.0)], None,
     ["2024-06-01"], ["1 non-positive value(s) rejected (2024-06-01)"]),  # so must an index
    (DGS10, [("2024-07-01", 0.0), ("2024-07-02", -0.01)], None, [], []),  # a yield need not
    # a yield's limit is in points; the summary names the first three of four spikes
    (DGS10, [(f"2024-07-{d:02d}", 6.0 if d in (2, 4, 8, 10) else 4.0) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11)],
     None, ["2024-07-02", "2024-07-04", "2024-07-08", "2024-07-10"],
     ["4 implausible jump(s) rejected (2024-07-02=6, 2024-07-04=6, 2024-07-08=6; limit 1 points a day)"]),
    # the first new day is judged against the last value stored
    (IWM, [("2024-07-01", 150.0), ("2024-07-02", 100.0), ("2024-07-03", 101.0)], 100.0,
     ["2024-07-01"], ["1 implausible jump(s) rejected (2024-07-01=150; limit 25% a day)"]),
    (IWM, [("2024-07-01", 150.0), ("2024-07-02", 100.0), ("2024-07-03", 101.0)], None, [], []),
])
def test_each_check_drops_its_rows_with_one_summary_line(series, rows, previous, dropped, reasons):
    frame = source(rows)
    kept, why = clean(frame, series, date(2024, 7, 31), previous, origin="nasdaq")
    assert sorted(set(f"{d:%Y-%m-%d}" for d in frame.index) - set(f"{d:%Y-%m-%d}" for d in kept.index)) == dropped
    assert why == reasons


@pytest.mark.parametrize("series, origin, path, name", [
    (IWM, "nasdaq", None, "IWM"),  # fetch: the series
    (None, "nasdaq", None, "nasdaq"),  # no series: the source
    (IWM, None, "data/IWM.csv", "IWM"),  # a file read for a series
    (None, None, "data/IWM.csv", "data/IWM.csv"),  # replay reads a file for no series: its path
])
def test_missing_values_are_one_info_line_naming_the_series_or_where_they_came_from(series, origin, path, name,
                                                                                     caplog):
    caplog.set_level(logging.INFO, logger="bot.data.clean")
    frame = observations(["2024-07-10", "2024-07-11", "2024-07-12"], [199.48, None, None], origin=path)
    clean(frame, series, origin=origin)
    assert messages(caplog, logging.INFO) == [f"{name}: 2 missing value(s) ('.' or empty) skipped"]
    assert messages(caplog) == []


@pytest.mark.parametrize("path, origin, named", [
    (None, "nasdaq", "nasdaq 2024-07-10"),
    ("data/IWM.csv", "csv", "data/IWM.csv:3 and data/IWM.csv:4"),  # a file's lines beat the source's name
])
def test_the_same_value_twice_is_kept_once_with_an_info_line_naming_both(path, origin, named, caplog):
    caplog.set_level(logging.INFO, logger="bot.data.clean")
    frame = observations(["2024-07-09", "2024-07-10", "2024-07-10"], [197.54, 199.48, 199.48], origin=path,
                         lines=[2, 3, 4] if path else None)
    kept, reasons = clean(frame, IWM, origin=origin)
    assert kept["value"].tolist() == [197.54, 199.48] and reasons == []
    assert messages(caplog, logging.INFO) == [f"{named}: 2024-07-10 given 2 times with the same value; kept once"]
    assert messages(caplog) == []


def test_a_frame_of_values_alone_is_cleaned_without_release_dates():
    """`clean` needs only a `value` column: the release-date check is skipped when there is none."""
    frame = pd.DataFrame({"value": [199.48, -1.0, 206.65]},
                         index=pd.DatetimeIndex(["2024-07-10", "2024-07-11", "2024-07-12"], name="date"))
    kept, reasons = clean(frame, IWM, origin="csv")
    assert kept["value"].tolist() == [199.48, 206.65]
    assert reasons == ["1 non-positive value(s) rejected (2024-07-11)"]



def test_an_index_at_zero_is_warned_in_plain_english(caplog):
    clean(source([("2024-05-01", 313.175), ("2024-06-01", 0.0)]), CPI, date(2024, 7, 31), origin="bls")
    assert messages(caplog) == ["bls 2024-06-01: 2024-06-01 value 0 is not positive (an index must be > 0); dropped"]


@pytest.mark.parametrize("values, previous, spikes", [
    ([100.0, 1e-307, 100.0], None, [1]),  # a tiny (but normal) price between real ones: the move back overflows
    ([100.0, 100.0], 1e-307, []),  # the stored value was the tiny one: two new days agree, a real move
])
def test_a_move_that_overflows_is_judged_without_a_numpy_warning(values, previous, spikes):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning on stderr reads like a crash to a user
        got = _spikes(np.array(values), "price", 25, previous)
    assert np.flatnonzero(got).tolist() == spikes
