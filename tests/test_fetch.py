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
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(cfg), "fetch"], capture_output=True,
                          text=True, env=subprocess_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 3
    assert "DGS10: FAILED: fred (http://127.0.0.1:9/graph/fredgraph.csv" in proc.stderr
    assert "cannot connect" in proc.stderr
