"""The cleaning path's small rules, one row per case, where `make mutate` found changes no test noticed.

Each table here failed on surviving mutants (README, "Tests"): the spike walk (a spike that reverts, one
that holds, two in a row, the newest value, a move of exactly the limit, a price's % against a yield's
points), a file's value text, and how far back a cut last line is compared.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bot.data.clean import _decimals, _spikes, cut_last_line, outside_dates, parse_value


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
