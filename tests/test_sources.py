"""Sources against a real HTTP server on 127.0.0.1 serving each source's real format.

The recorded answers in tests/fixtures/sources/ keep each service's real layout byte for byte (line ends,
ordering, a missing trailing newline, empty vs `.` values, extra columns, `$` and `,` in numbers); see the
README there. Every source is fed every failure a network can produce, each with the one outcome expected.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from werkzeug import Response

from bot.data.clean import clean
from bot.data.sources import SOURCES, get_source
from bot.errors import SourceError
from bot.settings.models import SourceSettings

FIXTURES = Path(__file__).parent / "fixtures" / "sources"

TREASURY_2024 = """Date,"1 Mo","2 Mo","3 Mo","4 Mo","6 Mo","1 Yr","2 Yr","3 Yr","5 Yr","7 Yr","10 Yr","20 Yr","30 Yr"
07/12/2024,5.49,5.50,5.45,5.44,5.30,5.01,4.45,4.25,4.11,4.13,4.18,4.48,4.39
07/11/2024,5.48,5.50,5.46,5.45,5.32,5.03,4.51,4.30,4.13,4.15,4.20,4.49,4.40
07/10/2024,5.48,5.51,5.48,5.46,5.37,5.11,4.62,4.41,4.24,4.25,4.28,4.56,4.47"""
FRED_CSV = "observation_date,DGS10\n2024-07-10,4.28\n2024-07-11,4.20\n2024-07-12,.\n2024-07-15,4.23\n"
FRED_CSV_OLD_HEADER = "DATE,DGS10\n2024-07-10,4.28\n2024-07-11,4.20\n"
NASDAQ_JSON = json.loads((FIXTURES / "nasdaq_IWM.json").read_text())
HTML = "<!DOCTYPE html><html><body>Checking your browser... solve this proof of work</body></html>"
TREASURY_PATH = "/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/{year}/all"


class Spec:
    """One source, one recorded real answer, and what it must parse to."""

    def __init__(self, id, name, symbol, path, fixture, ctype, start, end, expected, key=None):
        self.id, self.name, self.symbol, self.path = id, name, symbol, path
        self.body = (FIXTURES / fixture).read_bytes()
        self.ctype, self.start, self.end, self.expected, self.key = ctype, start, end, expected, key
        self.kind = "CSV" if ctype.startswith("text/csv") else "JSON"

    def good(self):
        return Response(self.body, status=200, content_type=self.ctype)


SPECS = [
    Spec("treasury", "treasury", "10 Yr", TREASURY_PATH.format(year=2025), "treasury_2025.csv",
         "text/csv; charset=utf-8", date(2025, 1, 1), date(2025, 2, 28),
         {"2025-01-02": 4.57, "2025-01-03": 4.60, "2025-02-14": 4.47, "2025-02-18": 4.55, "2025-02-19": 4.53,
          "2025-02-20": 4.50}),
    Spec("fred", "fred", "DGS10", "/graph/fredgraph.csv", "fred_graph_DGS10.csv", "text/csv; charset=UTF-8",
         date(2024, 7, 1), date(2024, 7, 15),
         {"2024-07-01": 4.48, "2024-07-02": 4.43, "2024-07-03": 4.36, "2024-07-05": 4.28, "2024-07-08": 4.28,
          "2024-07-09": 4.30, "2024-07-10": 4.28, "2024-07-11": 4.20, "2024-07-12": 4.18, "2024-07-15": 4.23}),
    Spec("fred-api", "fred", "CPIAUCSL", "/fred/series/observations", "fred_api_CPIAUCSL.json",
         "application/json; charset=UTF-8", date(2024, 1, 1), date(2024, 7, 31),
         {"2024-01-01": 309.698, "2024-02-01": 310.967, "2024-03-01": 312.345, "2024-04-01": 313.023,
          "2024-05-01": 313.175, "2024-06-01": 313.044}, key="k" * 32),
    Spec("bls", "bls", "CUSR0000SA0", "/publicAPI/v2/timeseries/data/CUSR0000SA0", "bls_CUSR0000SA0.json",
         "application/json", date(2023, 10, 1), date(2024, 7, 31),
         {"2023-11-01": 308.148, "2023-12-01": 308.741, "2024-01-01": 309.698, "2024-02-01": 310.967,
          "2024-03-01": 312.345, "2024-04-01": 313.023, "2024-05-01": 313.175, "2024-06-01": 313.044}),
    Spec("nasdaq", "nasdaq", "IWM", "/api/quote/IWM/historical", "nasdaq_IWM.json", "application/json; charset=utf-8",
         date(2024, 7, 8), date(2024, 7, 15),
         {"2024-07-08": 202.04, "2024-07-09": 201.16, "2024-07-10": 203.13, "2024-07-11": 210.43,
          "2024-07-12": 212.88, "2024-07-15": 216.93}),
    Spec("nasdaq-index", "nasdaq", "index:COMP", "/api/quote/COMP/historical", "nasdaq_COMP.json",
         "application/json; charset=utf-8", date(2024, 7, 10), date(2024, 7, 12),
         {"2024-07-10": 18647.45, "2024-07-11": 18283.41, "2024-07-12": 18398.45}),
]


def source_at(server, name, timeout=5.0):
    return get_source(name, SourceSettings(base_url=server.url_for("").rstrip("/"), timeout=timeout))


def fetch(server, name, symbol):
    return source_at(server, name).fetch(symbol, date(2024, 1, 1), date(2024, 7, 31))


def fetch_spec(spec, base_url, timeout=5.0, monkeypatch=None):
    if spec.key:
        monkeypatch.setenv("FRED_API_KEY", spec.key)
    source = get_source(spec.name, SourceSettings(base_url=base_url, timeout=timeout))
    return source.fetch(spec.symbol, spec.start, spec.end)


def as_dict(frame: pd.DataFrame) -> dict:
    return {d.strftime("%Y-%m-%d"): round(v, 4) for d, v in frame["value"].dropna().items()}


def reason(exc: SourceError) -> str:
    """The error without its 'source (url): ' prefix: the part that says what went wrong."""
    prefix = f"{exc.source} ({exc.url}): " if exc.url else f"{exc.source}: "
    assert str(exc).startswith(prefix)
    return str(exc)[len(prefix):]


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_source_parses_its_recorded_real_answer(httpserver, spec, monkeypatch):
    httpserver.expect_request(spec.path).respond_with_response(spec.good())
    assert as_dict(fetch_spec(spec, httpserver.url_for("").rstrip("/"), monkeypatch=monkeypatch)) == spec.expected


def test_the_treasury_fixture_has_the_real_files_shape():
    text = (FIXTURES / "treasury_2025.csv").read_text()
    assert text.startswith('Date,"1 Mo","1.5 Month","2 Mo"') and not text.endswith("\n")
    assert text.splitlines()[1].startswith("02/20/2025") and text.splitlines()[-1].startswith("01/02/2025")
    assert ",," in text.splitlines()[-1]  # the 1.5-month bill is empty before 2025-02-18


STALLING = threading.Semaphore(0)  # released once per stalled answer finished


def stall(request):
    try:
        time.sleep(0.4)
        return Response("late", status=200)
    finally:
        STALLING.release()


def wait_for_stalls(count):
    """Let the server finish the stalled answers, so the next test's requests never meet them."""
    for _ in range(count):
        assert STALLING.acquire(timeout=10)


def short_body(spec, sent=40):
    """Content-Length promises the whole recorded answer; the connection closes after `sent` bytes.

    A streamed body keeps the promised length (werkzeug recomputes it for a whole one).
    """
    def handler(request):
        return Response(iter([spec.body[:sent]]), status=200, content_type=spec.ctype,
                        headers={"Content-Length": str(len(spec.body))})
    return handler


def tries(spec):
    return "" if spec.name == "nasdaq" else " (4 tries)"  # Nasdaq stalls are not waited out twice


GARBAGE = b"\x00\x01\xff\xfe garbage \x89PNG"
GARBAGE_SAYS = {
    "treasury": "CSV for 2025 has no 'Date' column (columns: \x00\x01\ufffd\ufffd garbage \ufffdPNG)",
    "fred": f"expected two columns (date, DGS10), got {[GARBAGE.decode('utf-8', 'replace')]!r}",
    "fred-api": "answered with something that is not JSON",
    "bls": "answered with something that is not JSON",
    "nasdaq": "answered with something that is not JSON",
    "nasdaq-index": "answered with something that is not JSON",
}

# failure id -> (answers in order, or None for a dead port / a handler), the outcome: a reason or "parsed"
FAILURES = {
    "timeout": (lambda s: [stall], lambda s: f"no answer within 0.15s{tries(s)}"),
    "connection refused": (None, lambda s: "cannot connect (connection refused)"),
    "429 with Retry-After, then OK": (
        lambda s: [Response("slow down", status=429, headers={"Retry-After": "0"}), s.good()], lambda s: "parsed"),
    "503 then OK": (lambda s: [Response("busy", status=503), s.good()], lambda s: "parsed"),
    "500 then OK": (lambda s: [Response("oops", status=500), s.good()], lambda s: "parsed"),
    "HTML under 200": (lambda s: [Response(HTML, status=200, content_type="text/html")],
                       lambda s: f"answered with an HTML page instead of {s.kind}: {HTML!r}"),
    "HTML labelled as data": (lambda s: [Response(HTML, status=200, content_type=s.ctype)],
                              lambda s: f"answered with an HTML page instead of {s.kind}: {HTML!r}"),
    "empty body": (lambda s: [Response(b"", status=200, content_type=s.ctype)],
                   lambda s: f"answered with an empty body instead of {s.kind}"),
    "short body against Content-Length": (
        lambda s: [short_body(s)], lambda s: f"the answer was cut short: 40 of {len(s.body)} bytes arrived"),
    "404": (lambda s: [Response("not here", status=404)], lambda s: "HTTP 404 NOT FOUND: 'not here'"),
    "503 on every try": (lambda s: [Response("down", status=503)], lambda s: "HTTP 503 SERVICE UNAVAILABLE: 'down'"),
    "binary garbage": (lambda s: [Response(GARBAGE, status=200)], lambda s: GARBAGE_SAYS[s.id]),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_every_source_meets_every_failure_with_one_outcome(httpserver, monkeypatch, spec, failure):
    answers, outcome = FAILURES[failure]
    expected = outcome(spec)
    base_url = httpserver.url_for("").rstrip("/")
    if answers is None:
        base_url = f"http://127.0.0.1:{dead_port()}"
    else:
        sequence = answers(spec)  # one answer: given to every try; several: one each, in order
        for answer in sequence:
            handler = (httpserver.expect_request if len(sequence) == 1 else httpserver.expect_ordered_request)(
                spec.path)
            if callable(answer) and not isinstance(answer, Response):
                handler.respond_with_handler(answer)
            else:
                handler.respond_with_response(answer)
    try:
        frame = fetch_spec(spec, base_url, timeout=0.15 if failure == "timeout" else 5.0, monkeypatch=monkeypatch)
    except SourceError as exc:
        if failure == "timeout":
            wait_for_stalls(1 if spec.name == "nasdaq" else 4)
        assert exc.source == spec.name
        assert reason(exc) == expected
    else:
        assert expected == "parsed", f"expected the error {expected!r}, got {len(frame)} row(s)"
        assert as_dict(frame) == spec.expected


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


def test_fred_api_gives_every_cpi_vintage_when_a_key_is_set(httpserver, monkeypatch):
    """With a key, a monthly series comes with every vintage: first prints on their release days, then
    each revision from the day it was published (FRED's real-time period layout, several rows a period)."""
    monkeypatch.setenv("FRED_API_KEY", "k" * 32)
    httpserver.expect_oneshot_request("/fred/series/observations", query_string={
        "series_id": "CPIAUCSL", "api_key": "k" * 32, "file_type": "json",
        "observation_start": "2024-04-01", "observation_end": "2024-06-30", "realtime_start": "1776-07-04",
        "realtime_end": "9999-12-31"}).respond_with_data(
        (FIXTURES / "fred_api_CPIAUCSL_vintages.json").read_bytes(), content_type="application/json")
    frame = source_at(httpserver, "fred").fetch("CPIAUCSL", date(2024, 4, 1), date(2024, 6, 30), monthly=True)
    rows = [(f"{d:%Y-%m}", v, f"{r:%Y-%m-%d}", f"{k:%Y-%m-%d}") for d, v, r, k in
            zip(frame.index, frame["value"], frame["release_date"], frame["realtime_start"])]
    assert rows == [  # period, value, its first print's day, the day this value became known
        ("2024-04", 313.207, "2024-05-15", "2024-05-15"), ("2024-04", 313.023, "2024-05-15", "2026-02-13"),
        ("2024-05", 313.225, "2024-06-12", "2024-06-12"), ("2024-05", 313.175, "2024-06-12", "2026-02-13"),
        ("2024-06", 313.049, "2024-07-11", "2024-07-11"), ("2024-06", 313.044, "2024-07-11", "2026-02-13")]
    kept, dropped = clean(frame)  # several vintages of a period are not duplicates
    assert (len(kept), dropped) == (6, [])


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


TREASURY_2023_TAIL = (  # the real 2023 file's layout: newest first, quoted header, no newline after the last row
    'Date,"1 Mo","2 Mo","3 Mo","4 Mo","6 Mo","1 Yr","2 Yr","3 Yr","5 Yr","7 Yr","10 Yr","20 Yr","30 Yr"\n'
    "01/06/2023,4.07,4.45,4.66,4.78,4.80,4.71,4.24,3.96,3.69,3.63,3.55,3.84,3.67\n"
    "01/05/2023,4.13,4.48,4.67,4.78,4.84,4.83,4.45,4.18,3.91,3.84,3.71,3.96,3.78\n"
    "01/04/2023,4.13,4.46,4.65,4.76,4.79,4.73,4.36,4.11,3.84,3.79,3.69,3.94,3.77\n"
    "01/03/2023,4.17,4.42,4.53,4.69,4.77,4.72,4.40,4.18,3.94,3.89,3.79,4.06,3.88")


def test_treasury_keeps_the_years_oldest_row_that_ends_without_a_newline(httpserver):
    httpserver.expect_request(
        "/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/2023/all"
    ).respond_with_data(TREASURY_2023_TAIL, content_type="text/csv")
    frame = source_at(httpserver, "treasury").fetch("10 Yr", date(2023, 1, 1), date(2023, 12, 31))
    assert as_dict(frame) == {"2023-01-03": 3.79, "2023-01-04": 3.69, "2023-01-05": 3.71, "2023-01-06": 3.55}


def test_nasdaq_sends_the_headers_its_own_web_page_sends(httpserver):
    httpserver.expect_request("/api/quote/IWM/historical", headers={
        "Accept": "application/json, text/plain, */*",
        "Origin": "https://www.nasdaq.com",
        "Referer": "https://www.nasdaq.com/",
    }).respond_with_json(NASDAQ_JSON)
    assert len(fetch(httpserver, "nasdaq", "IWM")) == 6
    request = httpserver.log[0][0]
    assert request.headers["User-Agent"].startswith("Mozilla/5.0 (")
    assert "Closebell" not in request.headers["User-Agent"]


def test_nasdaq_gives_up_on_a_stall_after_one_short_wait():
    from bot.data.sources.nasdaq import Source
    assert Source().timeout == 10.0  # a stall costs seconds; settings.yaml may still set `timeout:`
    assert Source(SourceSettings(timeout=25)).timeout == 25.0
    assert Source(SourceSettings(base_url="http://x")).timeout == 10.0


def test_nasdaq_does_not_wait_out_a_stall_twice(httpserver):
    asked = []

    def counted_stall(request):
        asked.append(request.path)
        return stall(request)
    httpserver.expect_request("/api/quote/IWM/historical").respond_with_handler(counted_stall)
    source = get_source("nasdaq", SourceSettings(base_url=httpserver.url_for("").rstrip("/"), timeout=0.3))
    with pytest.raises(SourceError, match="no answer within 0.3s"):
        source.fetch("IWM", date(2024, 1, 1), date(2024, 7, 31))
    wait_for_stalls(1)
    assert asked == ["/api/quote/IWM/historical"]


# -- Yahoo Finance: yfinance cannot be pointed at 127.0.0.1, so its errors are tested with the exception
# objects it really raises, and end to end through a proxy that refuses every connection.

DNS_FAILURE = ("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com. "
               "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.")


def yahoo_errors():
    from curl_cffi.requests import exceptions as curl
    from yfinance import exceptions as yfe
    return [
        ("no DNS", curl.DNSError(DNS_FAILURE), [],
         "cannot reach Yahoo Finance: Could not resolve host: query2.finance.yahoo.com", True),
        ("refused", curl.ConnectionError("Failed to perform, curl: (7) Failed to connect to query2.finance.yahoo.com "
                                         "port 443 after 2 ms: Couldn't connect to server. See https://curl.se/x"),
         [], "cannot reach Yahoo Finance: Failed to connect to query2.finance.yahoo.com port 443 after 2 ms: "
             "Couldn't connect to server", True),
        ("possibly delisted, hiding a network error", yfe.YFTzMissingError("IWM"),
         [f"Failed to get ticker 'IWM' reason: {DNS_FAILURE}"],
         "cannot reach Yahoo Finance: Could not resolve host: query2.finance.yahoo.com", True),
        ("possibly delisted, for real", yfe.YFTzMissingError("IWMX"), [],
         "Yahoo Finance has no data for IWMX: possibly delisted; no timezone found", False),
        ("no prices", yfe.YFPricesMissingError("IWMX", "(1d 2024-07-01 -> 2024-07-13)"), [],
         "Yahoo Finance has no data for IWMX: possibly delisted; no price data found (1d 2024-07-01 -> 2024-07-13)",
         False),
        ("rate limited", yfe.YFRateLimitError(), [],
         "Yahoo Finance is rate limiting this address (HTTP 429 Too Many Requests); it usually lifts within the hour",
         False),
        ("stall", curl.ReadTimeout("Failed to perform, curl: (28) Operation timed out after 30001 milliseconds "
                                   "with 0 bytes received."), [], "Yahoo Finance did not answer within 30s", False),
    ]


@pytest.mark.parametrize("case", range(7), ids=["no DNS", "refused", "possibly delisted hiding a network error",
                                                "possibly delisted for real", "no prices", "rate limited", "stall"])
def test_yahoo_errors_read_as_what_they_are(case):
    from bot.data.http import SourceUnreachable
    from bot.data.sources.yahoo import error_for
    label, exc, logged, says, unreachable = yahoo_errors()[case]
    error = error_for(exc, exc.ticker if hasattr(exc, "ticker") else "IWM", 30.0, logged)
    assert (reason(error), isinstance(error, SourceUnreachable)) == (says, unreachable)


def test_yahoo_through_a_dead_proxy_is_a_network_failure_every_time(tmp_path):
    import yfinance as yf
    from bot.data.http import SourceUnreachable
    yf.set_tz_cache_location(str(tmp_path / "yf"))
    yf.config.network.proxy = f"http://127.0.0.1:{dead_port()}"  # every request refused, never the internet
    source = get_source("yahoo", SourceSettings(timeout=5))
    try:
        # yfinance answers the first two misses from another endpoint, then says "possibly delisted"
        for symbol in ("IWM", "SPY", "QQQ"):
            with pytest.raises(SourceUnreachable) as info:
                source.fetch(symbol, date(2024, 7, 1), date(2024, 7, 12))
            assert reason(info.value).startswith("cannot reach Yahoo Finance: Failed to connect to "
                                                 "query2.finance.yahoo.com")
    finally:
        yf.config.network.proxy = None
