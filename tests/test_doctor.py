"""`bot.data.doctor.probe`: every series' primary and fallback over the last sessions, against local stand-ins."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.clock import SimulatedClock
from bot.data.doctor import probe, window
from bot.settings.models import SeriesDef, Settings, SourceSettings
from tests.test_sources import FIXTURES, HTML, TREASURY_PATH, dead_port

ET = ZoneInfo("America/New_York")
CLOCK = SimulatedClock(datetime(2024, 7, 16, 12, 0, tzinfo=ET))  # last closed session: Monday 2024-07-15
DGS10 = SeriesDef(name="DGS10", units="percent", source="treasury", symbol="10 Yr",
                  fallback={"source": "fred", "symbol": "DGS10"})
FRED_VALUES = {"07/01/2024": "4.48", "07/02/2024": "4.43", "07/03/2024": "4.36", "07/05/2024": "4.28",
               "07/08/2024": "4.28", "07/09/2024": "4.30", "07/10/2024": "4.28", "07/11/2024": "4.20",
               "07/12/2024": "4.18", "07/15/2024": "4.23"}


def treasury_2024(values: dict[str, str]) -> str:
    header = 'Date,"1 Mo","2 Mo","3 Mo","4 Mo","6 Mo","1 Yr","2 Yr","3 Yr","5 Yr","7 Yr","10 Yr","20 Yr","30 Yr"'
    rows = [f"{d},5.48,5.50,5.46,5.45,5.32,5.03,4.51,4.30,4.13,4.15,{v},4.49,4.40"
            for d, v in sorted(values.items(), reverse=True)]
    return "\n".join([header] + rows)  # newest first, no newline at the end, like the real file


def settings_for(**urls) -> Settings:
    return Settings(sources={name: SourceSettings(base_url=url, timeout=5) for name, url in urls.items()})


def serve(server, treasury_values=None, fred=True):
    if treasury_values is not None:
        server.expect_request(TREASURY_PATH.format(year=2024)).respond_with_data(
            treasury_2024(treasury_values), content_type="text/csv")
    if fred is True:
        server.expect_request("/graph/fredgraph.csv").respond_with_data(
            (FIXTURES / "fred_graph_DGS10.csv").read_bytes(), content_type="text/csv")
    elif fred is not None:
        server.expect_request("/graph/fredgraph.csv").respond_with_response(fred)


def test_the_window_is_the_last_ten_sessions():
    assert window(10, CLOCK) == (date(2024, 7, 1), date(2024, 7, 15))
    assert window(10, CLOCK, monthly=True) == (date(2023, 9, 1), date(2024, 7, 15))


def test_primary_and_fallback_that_agree(httpserver):
    serve(httpserver, FRED_VALUES)
    url = httpserver.url_for("").rstrip("/")
    primary, fallback = probe({"DGS10": DGS10}, settings_for(treasury=url, fred=url), clock=CLOCK)
    assert (primary.series, primary.role, primary.source, primary.symbol) == ("DGS10", "primary", "treasury", "10 Yr")
    assert (fallback.role, fallback.source, fallback.symbol) == ("fallback", "fred", "DGS10")
    for row in (primary, fallback):
        assert (row.rows, row.last, row.error, row.agree) == (10, date(2024, 7, 15), None, True)
        assert row.latency > 0
    assert primary.note == "10 common date(s) within 0.02 points"


def test_a_good_primary_and_a_broken_fallback(httpserver):
    from werkzeug import Response
    serve(httpserver, FRED_VALUES, fred=Response(HTML, status=200, content_type="text/html"))
    url = httpserver.url_for("").rstrip("/")
    primary, fallback = probe({"DGS10": DGS10}, settings_for(treasury=url, fred=url), clock=CLOCK)
    assert (primary.rows, primary.error, primary.agree) == (10, None, None)
    assert (fallback.rows, fallback.last, fallback.agree) == (0, None, None)
    assert fallback.error.endswith(f"answered with an HTML page instead of CSV: {HTML!r}")
    assert primary.note == "cannot compare: a source failed"


def test_sources_that_disagree_say_where(httpserver):
    off = dict(FRED_VALUES, **{"07/11/2024": "4.30", "07/12/2024": "4.28"})  # 0.10 points above FRED twice
    serve(httpserver, off)
    url = httpserver.url_for("").rstrip("/")
    primary, fallback = probe({"DGS10": DGS10}, settings_for(treasury=url, fred=url), clock=CLOCK)
    assert primary.agree is False and fallback.agree is False
    assert primary.note == ("2 of 10 common date(s) differ by more than 0.02 points: 2024-07-11 4.3 vs 4.2, "
                            "2024-07-12 4.28 vs 4.18")


def test_one_disagreeing_close_is_an_ex_dividend_date_not_a_broken_feed(httpserver, tmp_path):
    import json
    body = json.loads((FIXTURES / "nasdaq_IWM.json").read_text())
    httpserver.expect_request("/api/quote/IWM/historical").respond_with_json(body)
    # the fallback (a CSV history) differs by 1% on 2024-07-09 only, as adjusted and as-traded closes do on
    # an ex-dividend date
    (tmp_path / "IWM.csv").write_text("date,value\n2024-07-08,202.0400\n2024-07-09,199.1500\n2024-07-10,203.1300\n"
                                      "2024-07-11,210.4300\n2024-07-12,212.8800\n2024-07-15,216.9300\n")
    series = SeriesDef(name="IWM", source="nasdaq", fallback={"source": "csv", "symbol": "IWM"})
    settings = settings_for(nasdaq=httpserver.url_for("").rstrip("/"), csv=str(tmp_path))
    primary, fallback = probe({"IWM": series}, settings, clock=CLOCK)
    assert (primary.rows, fallback.rows, primary.agree) == (6, 6, True)
    assert primary.note.startswith("6 common date(s); 2024-07-09 201.16 vs 199.15 differ by more than 0.5% ")


def test_no_network_one_probe_and_the_rest_not_tried():
    dead = f"http://127.0.0.1:{dead_port()}"
    other = f"http://127.0.0.1:{dead_port()}"
    series = {"DGS10": DGS10, "DGS2": SeriesDef(name="DGS2", units="percent", source="fred")}
    rows = probe(series, settings_for(treasury=dead, fred=other), clock=CLOCK)
    assert [(r.series, r.source) for r in rows] == [("DGS10", "treasury"), ("DGS10", "fred"), ("DGS2", "fred")]
    assert rows[0].error.endswith(": cannot connect (connection refused)")
    # each row names its own failure; the outage (which hosts, why) is said once, on the row that met it
    assert [r.error for r in rows[1:]] == ["not tried (network unreachable)"] * 2
    hosts = f"{dead.removeprefix('http://')} and {other.removeprefix('http://')}"
    assert [r.outage for r in rows] == [f"network unreachable: {hosts} cannot be connected to (connection "
                                        "refused); the sources after this one were not tried", "", ""]
    assert rows[2].note == "no fallback to compare with"


@pytest.mark.parametrize("sessions", [1, 3])
def test_fewer_sessions_narrow_the_window(httpserver, sessions):
    serve(httpserver, FRED_VALUES)
    url = httpserver.url_for("").rstrip("/")
    primary, _ = probe({"DGS10": DGS10}, settings_for(treasury=url, fred=url), sessions=sessions, clock=CLOCK)
    assert primary.rows == sessions


def dgs10_config(tmp_path, treasury: str, fred: str):
    """A configuration directory of one series, DGS10: Treasury first, FRED as its fallback, at these URLs."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "series.yaml").write_text("series:\n  DGS10: {units: percent, source: treasury, symbol: 10 Yr, "
                                        "fallback: {source: fred, symbol: DGS10}}\n")
    (config / "settings.yaml").write_text(f"sources:\n  treasury: {{base_url: '{treasury}'}}\n"
                                          f"  fred: {{base_url: '{fred}'}}\n")
    (config / "rules.yaml").write_text("rules: []\n")
    return config


def test_the_sources_command_prints_a_row_per_feed_through_the_app(httpserver, tmp_path):
    """`python -m bot sources`, rendered from the app's answer, against the stand-ins."""
    from bot.app import App
    from bot.commands.sources import table
    from bot.settings.live import LiveConfig
    serve(httpserver, FRED_VALUES)
    url = httpserver.url_for("").rstrip("/")
    config = dgs10_config(tmp_path, treasury=url, fred=url)
    app = App(LiveConfig(config / "rules.yaml", config), clock=CLOCK)
    lines = table(app.sources())
    assert lines[0].split() == ["series", "role", "source", "symbol", "rows", "last", "latency", "agree", "note"]
    assert lines[1].split()[:7] == ["DGS10", "primary", "treasury", "10", "Yr", "10", "2024-07-15"]
    assert lines[2].split()[:6] == ["DGS10", "fallback", "fred", "DGS10", "10", "2024-07-15"]
    assert "yes" in lines[1] and "yes" in lines[2]


def test_the_sources_command_exits_3_when_a_series_has_no_working_feed(httpserver, tmp_path):
    import subprocess
    import sys
    from tests.conftest import ROOT, subprocess_env
    from werkzeug import Response
    serve(httpserver, None, fred=Response(HTML, status=200, content_type="text/html"))
    url = httpserver.url_for("").rstrip("/")
    config = dgs10_config(tmp_path, treasury=f"http://127.0.0.1:{dead_port()}", fred=url)
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "sources"], cwd=ROOT,
                          env=subprocess_env(CLOSEBELL_HOME=tmp_path / "home"), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip() == "error: sources: no working source for DGS10"
    rows = proc.stdout.splitlines()
    assert [r.split()[:3] for r in rows[1:]] == [["DGS10", "primary", "treasury"], ["DGS10", "fallback", "fred"]]
    assert "cannot connect" in rows[1] and "HTML page" in rows[2]


def test_the_sources_command_says_a_network_outage_once_after_the_rows(tmp_path):
    import subprocess
    import sys
    from tests.conftest import ROOT, subprocess_env
    dead, other = f"http://127.0.0.1:{dead_port()}", f"http://127.0.0.1:{dead_port()}"
    config = dgs10_config(tmp_path, treasury=dead, fred=other)
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "sources"], cwd=ROOT,
                          env=subprocess_env(CLOSEBELL_HOME=tmp_path / "home"), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[1].endswith("treasury: cannot connect (connection refused)")
    assert rows[2].endswith("not tried (network unreachable)")
    assert rows[3].startswith("network unreachable: ") and len(rows) == 4
    assert proc.stdout.count("127.0.0.1") == 2  # the two hosts, named once, on the outage line


NOTES = [
    # (note, limit, as the table shows it)
    ("cannot connect (connection refused)", 160, "cannot connect (connection refused)"),
    ("fred: answered with an HTML page instead of CSV", 30, "fred: answered with an HTML…"),
    ("yahoo: cannot reach Yahoo Finance: connection refused", 24, "yahoo: cannot reach…"),
    ("x" * 40, 20, "x" * 19 + "…"),  # one word longer than the column: cut inside it
]


@pytest.mark.parametrize("note,limit,shown", NOTES, ids=[n[2] for n in NOTES])
def test_a_long_note_is_cut_at_a_word_and_marked(note, limit, shown):
    from bot.commands.sources import fit
    assert fit(note, limit) == shown and len(shown) <= limit
