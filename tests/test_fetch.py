"""Fetching into the store: fallback, provenance, cleaning, incremental updates."""

from __future__ import annotations

import subprocess
import sys
from datetime import date


from bot.data.fetch import update
from bot.settings.models import SeriesDef, Settings, SourceSettings
from tests.conftest import ROOT, subprocess_env
from tests.test_sources import FRED_CSV, HTML, TREASURY_2024

TREASURY_PATH = "/resource-center/data-chart-center/interest-rates/daily-treasury-rates.csv/2024/all"


def settings_for(server):
    url = server.url_for("").rstrip("/")
    return Settings(sources={"treasury": SourceSettings(base_url=url), "fred": SourceSettings(base_url=url)})


DGS10 = SeriesDef(name="DGS10", units="percent", source="treasury", symbol="10 Yr",
                  fallback={"source": "fred", "symbol": "DGS10"})


def test_primary_source_fills_the_store_and_is_recorded(httpserver, store):
    httpserver.expect_request(TREASURY_PATH).respond_with_data(TREASURY_2024)
    [result] = update(store, {"DGS10": DGS10}, settings_for(httpserver), since=date(2024, 7, 1),
                      today=date(2024, 7, 12))
    assert (result.ok, result.source, result.rows, result.last) == (True, "treasury", 3, date(2024, 7, 12))
    assert set(store.read_observations(["DGS10"])["DGS10"]["source"]) == {"treasury"}


def test_fallback_serves_when_the_primary_answers_html(httpserver, store):
    httpserver.expect_request(TREASURY_PATH).respond_with_data(HTML, content_type="text/html")
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV)
    [result] = update(store, {"DGS10": DGS10}, settings_for(httpserver), since=date(2024, 7, 1),
                      today=date(2024, 7, 15))
    assert result.ok and result.source == "fred"
    assert "HTML page" in result.errors[0]
    assert "1 missing value" in result.dropped[0]
    fetches = store.last_fetches()["DGS10"]
    assert fetches["source"] == "fred" and fetches["ok"]


def test_both_sources_failing_stores_nothing_and_says_why(httpserver, store):
    httpserver.expect_request(TREASURY_PATH).respond_with_data("", status=404)
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data("garbage\n\x00\x01")
    [result] = update(store, {"DGS10": DGS10}, settings_for(httpserver), since=date(2024, 7, 1),
                      today=date(2024, 7, 15))
    assert not result.ok
    assert "treasury" in result.errors[0] and "HTTP 404" in result.errors[0]
    assert "fred" in result.errors[1]
    assert store.count_observations() == {}


def test_a_price_of_zero_and_a_reversing_spike_are_never_stored(httpserver, store):
    body = ("observation_date,X\n2024-07-08,100\n2024-07-09,0\n2024-07-10,101\n2024-07-11,300\n"
            "2024-07-12,102\n2024-07-15,103\n")
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(body)
    series = SeriesDef(name="X", source="fred")
    [result] = update(store, {"X": series}, settings_for(httpserver), since=date(2024, 7, 1),
                      today=date(2024, 7, 15))
    stored = store.read_observations(["X"])["X"]["value"].tolist()
    assert stored == [100, 101, 102, 103]
    assert any("non-positive" in r for r in result.dropped) and any("implausible" in r for r in result.dropped)


def test_an_update_asks_only_from_the_last_stored_date_less_an_overlap(httpserver, store):
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV)
    series = SeriesDef(name="DGS10", units="percent", source="fred")
    update(store, {"DGS10": series}, settings_for(httpserver), since=date(2024, 7, 1), today=date(2024, 7, 15))
    httpserver.clear_log()
    [result] = update(store, {"DGS10": series}, settings_for(httpserver), today=date(2024, 7, 16))
    request = httpserver.log[0][0]
    assert request.args["cosd"] == "2024-07-05"  # 2024-07-15 less 10 days
    assert result.rows == 0


def test_fetch_from_the_shipped_history_loads_everything_then_adds_nothing(data_dir, tmp_path):
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "h")
    first = subprocess.run([sys.executable, "-m", "bot", "fetch", "--data-dir", str(data_dir)],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "IWM: 6550 new or changed row(s) from csv" in first.stdout
    second = subprocess.run([sys.executable, "-m", "bot", "fetch", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert second.returncode == 0
    assert second.stdout.count(" 0 new or changed row(s)") == 7


def test_fetch_of_an_unknown_series_is_a_usage_error_with_a_suggestion(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bot", "fetch", "--series", "IWN"], capture_output=True,
                          text=True, env=subprocess_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "unknown series 'IWN'; did you mean 'IWM'?" in proc.stderr


def test_fetch_without_network_names_the_source_that_failed(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "series.yaml").write_text("series:\n  DGS10: {source: fred, units: percent}\n")
    (cfg / "settings.yaml").write_text("sources:\n  fred: {base_url: 'http://127.0.0.1:9', timeout: 2}\n")
    (cfg / "rules.yaml").write_text("rules: []\n")
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(cfg), "fetch"], capture_output=True,
                          text=True, env=subprocess_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 3
    assert "DGS10: FAILED: fred (http://127.0.0.1:9/graph/fredgraph.csv" in proc.stderr
    assert "cannot connect" in proc.stderr


# -- no network: one probe, then every remaining source skipped -----------------------------------------

def dead_url():
    from tests.test_sources import dead_port
    return f"http://127.0.0.1:{dead_port()}"


class CountingProbe:
    """The real TCP probe, counted."""

    def __init__(self):
        self.asked = []

    def __call__(self, host, port):
        from bot.data.fetch import tcp_probe
        self.asked.append((host, port))
        return tcp_probe(host, port)


NO_NETWORK_SERIES = {
    "DGS10": DGS10,
    "DGS2": SeriesDef(name="DGS2", units="percent", source="treasury", symbol="2 Yr",
                      fallback={"source": "fred", "symbol": "DGS2"}),
    "IWM": SeriesDef(name="IWM", source="yahoo", fallback={"source": "nasdaq", "symbol": "IWM"}),
    "CPIAUCSL": SeriesDef(name="CPIAUCSL", frequency="monthly", units="index", source="fred",
                          fallback={"source": "bls", "symbol": "CUSR0000SA0"}),
}


def test_without_network_one_probe_then_every_series_fails_at_once(store):
    urls = {name: dead_url() for name in ("treasury", "fred", "nasdaq", "bls")}
    settings = Settings(sources={name: SourceSettings(base_url=url) for name, url in urls.items()})
    probe = CountingProbe()
    results = update(store, NO_NETWORK_SERIES, settings, today=date(2024, 7, 15), probe=probe)
    treasury = f"treasury ({urls['treasury']}/resource-center/data-chart-center/interest-rates/" \
               f"daily-treasury-rates.csv/2009/all?type=daily_treasury_yield_curve&field_tdr_date_value=2009&page" \
               f"&_format=csv): cannot connect (connection refused)"
    fred_host = urls["fred"].removeprefix("http://")
    skipped = "not tried (network unreachable)"
    assert probe.asked == [("127.0.0.1", int(fred_host.split(":")[1]))]
    # one line per source naming its own failure, never another source's error nested in it
    assert [r.errors for r in results] == [
        [treasury, f"fred: {skipped}"],
        [f"treasury: {skipped}", f"fred: {skipped}"],
        [f"yahoo: {skipped}", f"nasdaq: {skipped}"],
        [f"fred: {skipped}", f"bls: {skipped}"],
    ]
    # the outage itself, said once: on the series that met it
    down = (f"network unreachable: {urls['treasury'].removeprefix('http://')} and {fred_host} cannot be connected "
            "to (connection refused); the sources after this one were not tried")
    assert [r.outage for r in results] == [down, "", "", ""]
    assert results[0].line().endswith(f"; fred: {skipped}; {down}")
    assert results[1].line() == f"DGS2: FAILED: treasury and fred: {skipped}"
    assert not any(r.ok for r in results) and store.count_observations() == {}
    assert store.last_fetches()["IWM"]["message"] == f"nasdaq: {skipped}"


def test_one_dead_host_is_skipped_while_the_network_is_up(httpserver, store):
    url = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV)
    settings = Settings(sources={"treasury": SourceSettings(base_url=dead_url()),
                                 "fred": SourceSettings(base_url=url)})
    probe = CountingProbe()
    series = {"DGS10": DGS10, "DGS2": NO_NETWORK_SERIES["DGS2"]}
    first, second = update(store, series, settings, since=date(2024, 7, 1), today=date(2024, 7, 15), probe=probe)
    assert probe.asked == [("127.0.0.1", httpserver.port)]  # the probe reached the fred stand-in: network up
    assert (first.ok, first.source) == (True, "fred") and "cannot connect (connection refused)" in first.errors[0]
    assert (second.ok, second.source) == (True, "fred")
    dead_host = settings.sources["treasury"].base_url.removeprefix("http://")
    assert second.errors == [f"treasury: not tried ({dead_host} could not be connected to a moment ago)"]
    assert (first.outage, second.outage) == ("", "")


def test_an_update_starts_no_series_once_its_budget_is_spent(httpserver, store):
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV)
    ticks = iter([0.0, 1.0, 31.0])  # started, before DGS10, before DGS2

    series = {"DGS10": SeriesDef(name="DGS10", units="percent", source="fred"),
              "DGS2": SeriesDef(name="DGS2", units="percent", source="fred")}
    first, second = update(store, series, settings_for(httpserver), since=date(2024, 7, 1), today=date(2024, 7, 15),
                           budget_seconds=30, timer=lambda: next(ticks))
    assert first.ok
    assert (second.ok, second.errors) == (False, ["not tried: this fetch's time budget of 30s was spent"])


def test_a_failed_line_says_a_shared_skip_reason_once():
    from bot.data.fetch import FetchResult
    skipped = "not tried (network unreachable)"
    result = FetchResult("DGS2", ok=False, errors=[f"treasury: {skipped}", f"fred: {skipped}"])
    assert result.line() == f"DGS2: FAILED: treasury and fred: {skipped}"
