"""Sources against a real HTTP server on 127.0.0.1 serving each source's real format."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from werkzeug import Response

from bot.data.sources import SOURCES, get_source
from bot.errors import SourceError
from bot.settings.models import SourceSettings

TREASURY_2024 = """Date,"1 Mo","2 Mo","3 Mo","4 Mo","6 Mo","1 Yr","2 Yr","3 Yr","5 Yr","7 Yr","10 Yr","20 Yr","30 Yr"
07/12/2024,5.49,5.50,5.45,5.44,5.30,5.01,4.45,4.25,4.11,4.13,4.18,4.48,4.39
07/11/2024,5.48,5.50,5.46,5.45,5.32,5.03,4.51,4.30,4.13,4.15,4.20,4.49,4.40
07/10/2024,5.48,5.51,5.48,5.46,5.37,5.11,4.62,4.41,4.24,4.25,4.28,4.56,4.47
"""
FRED_CSV = "observation_date,DGS10\n2024-07-10,4.28\n2024-07-11,4.20\n2024-07-12,.\n2024-07-15,4.23\n"
FRED_CSV_OLD_HEADER = "DATE,DGS10\n2024-07-10,4.28\n2024-07-11,4.20\n"
NASDAQ_JSON = {"data": {"symbol": "IWM", "tradesTable": {"rows": [
    {"date": "07/12/2024", "close": "$210.50", "volume": "1"},
    {"date": "07/11/2024", "close": "$208.91", "volume": "1"},
    {"date": "07/10/2024", "close": "$201.67", "volume": "1"}]}}, "status": {"rCode": 200}}
BLS_JSON = {"status": "REQUEST_SUCCEEDED", "message": [], "Results": {"series": [{"seriesID": "CUSR0000SA0", "data": [
    {"year": "2024", "period": "M06", "value": "313.049"},
    {"year": "2024", "period": "M05", "value": "313.140"},
    {"year": "2024", "period": "M13", "value": "999"}]}]}}
HTML = "<!DOCTYPE html><html><body>Checking your browser... solve this proof of work</body></html>"

# source name, symbol, URL path, a good answer (body, content type), what it must parse to
CASES = [
    ("treasury", "10 Yr", "/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/2024/all",
     (TREASURY_2024, "text/csv"), {"2024-07-10": 4.28, "2024-07-11": 4.20, "2024-07-12": 4.18}),
    ("fred", "DGS10", "/graph/fredgraph.csv", (FRED_CSV, "text/csv"),
     {"2024-07-10": 4.28, "2024-07-11": 4.20, "2024-07-15": 4.23}),
    ("nasdaq", "IWM", "/api/quote/IWM/historical", (json.dumps(NASDAQ_JSON), "application/json"),
     {"2024-07-10": 201.67, "2024-07-11": 208.91, "2024-07-12": 210.50}),
    ("bls", "CUSR0000SA0", "/publicAPI/v2/timeseries/data/CUSR0000SA0", (json.dumps(BLS_JSON), "application/json"),
     {"2024-05-01": 313.140, "2024-06-01": 313.049}),
]
IDS = [c[0] for c in CASES]


def source_at(server, name):
    return get_source(name, SourceSettings(base_url=server.url_for("").rstrip("/"), timeout=5))


def fetch(server, name, symbol):
    return source_at(server, name).fetch(symbol, date(2024, 1, 1), date(2024, 7, 31))


def as_dict(frame: pd.DataFrame) -> dict:
    return {d.strftime("%Y-%m-%d"): round(v, 4) for d, v in frame["value"].dropna().items()}


@pytest.mark.parametrize("name,symbol,path,good,expected", CASES, ids=IDS)
def test_source_parses_its_real_format(httpserver, name, symbol, path, good, expected):
    httpserver.expect_request(path).respond_with_data(good[0], content_type=good[1])
    assert as_dict(fetch(httpserver, name, symbol)) == expected


@pytest.mark.parametrize("name,symbol,path,good,expected", CASES, ids=IDS)
def test_source_retries_a_first_try_500_then_succeeds(httpserver, name, symbol, path, good, expected):
    httpserver.expect_ordered_request(path).respond_with_data("busy", status=500)
    httpserver.expect_ordered_request(path).respond_with_data(good[0], content_type=good[1])
    assert as_dict(fetch(httpserver, name, symbol)) == expected


@pytest.mark.parametrize("name,symbol,path,good,expected", CASES, ids=IDS)
def test_source_retries_429_honouring_retry_after(httpserver, name, symbol, path, good, expected):
    httpserver.expect_ordered_request(path).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "0"}))
    httpserver.expect_ordered_request(path).respond_with_data(good[0], content_type=good[1])
    assert as_dict(fetch(httpserver, name, symbol)) == expected


BAD_ANSWERS = [
    ("an HTML page under 200", lambda: Response(HTML, status=200, content_type="text/html"), "HTML page"),
    ("HTML mislabelled as CSV", lambda: Response(HTML, status=200, content_type="text/csv"), "HTML page"),
    ("an empty body", lambda: Response("", status=200, content_type="text/csv"), "empty body"),
    ("a 404", lambda: Response("not here", status=404), "HTTP 404"),
    ("503 on every try", lambda: Response("down", status=503), "HTTP 503"),
    ("binary garbage", lambda: Response(b"\x00\x01\xff\xfe garbage \x89PNG", status=200), ""),
]


@pytest.mark.parametrize("name,symbol,path,good,expected", CASES, ids=IDS)
@pytest.mark.parametrize("label,answer,words", BAD_ANSWERS, ids=[b[0] for b in BAD_ANSWERS])
def test_source_rejects_what_is_not_data_with_a_clear_error(httpserver, name, symbol, path, good, expected,
                                                            label, answer, words):
    httpserver.expect_request(path).respond_with_response(answer())
    try:
        frame = fetch(httpserver, name, symbol)
    except SourceError as exc:
        assert exc.source == name
        assert words in str(exc)
    else:
        # garbage that parses as nothing must yield no data, never invented values
        assert words == "" and frame.empty


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_source_reports_a_dead_server(name):
    source = get_source(name, SourceSettings(base_url="http://127.0.0.1:9", timeout=2))
    with pytest.raises(SourceError, match="cannot connect|retries"):
        source.fetch("X", date(2024, 1, 1), date(2024, 1, 31))


def test_fred_reads_the_pre_2024_header_by_position(httpserver):
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV_OLD_HEADER)
    assert as_dict(fetch(httpserver, "fred", "DGS10")) == {"2024-07-10": 4.28, "2024-07-11": 4.20}


def test_fred_sends_the_series_and_window(httpserver):
    httpserver.expect_request("/graph/fredgraph.csv", query_string={
        "id": "DGS10", "cosd": "2024-01-01", "coed": "2024-07-31"}).respond_with_data(FRED_CSV)
    assert fetch(httpserver, "fred", "DGS10")["value"].count() == 3


def test_fred_marks_a_dot_as_missing_for_cleaning_to_drop(httpserver):
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV)
    frame = fetch(httpserver, "fred", "DGS10")
    assert frame["value"].isna().tolist() == [False, False, True, False]


def test_fred_api_gives_cpi_release_dates_when_a_key_is_set(httpserver, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", "k" * 32)
    current = {"observations": [{"date": "2024-05-01", "value": "313.140"},
                                {"date": "2024-06-01", "value": "313.049"}]}
    first = {"observations": [{"date": "2024-05-01", "value": "313.2", "realtime_start": "2024-06-12"},
                              {"date": "2024-06-01", "value": "313.0", "realtime_start": "2024-07-11"}]}
    httpserver.expect_ordered_request("/fred/series/observations", query_string={
        "series_id": "CPIAUCSL", "api_key": "k" * 32, "file_type": "json",
        "observation_start": "2024-01-01", "observation_end": "2024-07-31"}).respond_with_json(current)
    httpserver.expect_ordered_request("/fred/series/observations").respond_with_json(first)
    frame = source_at(httpserver, "fred").fetch("CPIAUCSL", date(2024, 1, 1), date(2024, 7, 31), monthly=True)
    assert as_dict(frame) == {"2024-05-01": 313.14, "2024-06-01": 313.049}
    assert [d.strftime("%Y-%m-%d") for d in frame["release_date"]] == ["2024-06-12", "2024-07-11"]


def test_fred_api_error_does_not_leak_the_key(httpserver, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", "s3cretkey" * 3)
    httpserver.expect_request("/fred/series/observations").respond_with_json(
        {"error_code": 400, "error_message": "Bad Request. The series does not exist."}, status=400)
    with pytest.raises(SourceError) as info:
        source_at(httpserver, "fred").fetch("NOPE", date(2024, 1, 1), date(2024, 7, 31))
    assert "s3cretkey" not in str(info.value)
    assert "HTTP 400" in str(info.value)


def test_treasury_names_the_tenors_when_the_column_is_unknown(httpserver):
    httpserver.expect_request(
        "/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/2024/all"
    ).respond_with_data(TREASURY_2024)
    with pytest.raises(SourceError, match=r"no column '10 Year'.*10 Yr"):
        fetch(httpserver, "treasury", "10 Year")


def test_treasury_asks_one_file_per_year(httpserver):
    for year in (2023, 2024):
        httpserver.expect_request(
            f"/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/{year}/all",
            query_string={"type": "daily_treasury_yield_curve", "field_tdr_date_value": str(year),
                          "page": "", "_format": "csv"}
        ).respond_with_data(TREASURY_2024.replace("2024", str(year)))
    frame = source_at(httpserver, "treasury").fetch("2 Yr", date(2023, 1, 1), date(2024, 12, 31))
    assert len(frame) == 6 and frame.index.is_monotonic_increasing


def test_nasdaq_reports_its_own_error_message(httpserver):
    httpserver.expect_request("/api/quote/NOPE/historical").respond_with_json(
        {"data": None, "status": {"rCode": 400, "bCodeMessage": [{"code": 1001, "errorMessage": "Symbol not exists"}]}})
    with pytest.raises(SourceError, match="Symbol not exists"):
        fetch(httpserver, "nasdaq", "NOPE")


def test_bls_reports_a_refused_request(httpserver):
    httpserver.expect_request("/publicAPI/v2/timeseries/data/CUSR0000SA0").respond_with_json(
        {"status": "REQUEST_NOT_PROCESSED", "message": ["daily threshold reached"], "Results": {}})
    with pytest.raises(SourceError, match="daily threshold"):
        fetch(httpserver, "bls", "CUSR0000SA0")


def test_yahoo_adapter_turns_yfinance_history_into_observations():
    from bot.data.sources.yahoo import to_observations
    index = pd.DatetimeIndex(["2024-07-10", "2024-07-11"]).tz_localize("America/New_York")
    history = pd.DataFrame({"Close": [201.67, 208.91], "Volume": [1, 2]}, index=index)
    assert as_dict(to_observations(history)) == {"2024-07-10": 201.67, "2024-07-11": 208.91}


def test_every_registered_source_imports_and_names_itself():
    for name in SOURCES:
        assert get_source(name).name == name


def slow(request):
    import time
    time.sleep(1.0)
    return Response("late", status=200)


def truncated(request):
    # Content-Length promises more than the body holds: the connection ends mid-file
    return Response(TREASURY_2024[:120], status=200, headers={"Content-Length": "5000"})


@pytest.mark.parametrize("name,symbol,path,good,expected", CASES, ids=IDS)
@pytest.mark.parametrize("handler,words", [(slow, "no answer within"), (truncated, "")],
                         ids=["no answer in time", "body cut short"])
def test_source_survives_a_slow_or_broken_connection(httpserver, name, symbol, path, good, expected, handler, words):
    httpserver.expect_request(path).respond_with_handler(handler)
    source = get_source(name, SourceSettings(base_url=httpserver.url_for("").rstrip("/"), timeout=0.3))
    try:
        frame = source.fetch(symbol, date(2024, 1, 1), date(2024, 7, 31))
    except SourceError as exc:
        assert words in str(exc)
    else:  # what arrived whole may be kept; a number cut in half never is
        assert handler is truncated and set(as_dict(frame).values()) <= set(expected.values())


def test_a_csv_cut_mid_number_keeps_only_whole_lines(httpserver):
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(
        "observation_date,DGS10\n2024-07-10,4.28\n2024-07-11,4.1")  # the body stopped inside 4.18
    assert as_dict(fetch(httpserver, "fred", "DGS10")) == {"2024-07-10": 4.28}
