"""The registry of data sources: a YAML name mapped to the module that implements it.

Read it top to bottom to see every source. Adding a source is adding a file
with a `Source` class and one line here; modules are imported only when a series
uses them, so `yfinance` costs nothing to a user who reads FRED alone.
"""

from __future__ import annotations

import importlib

SOURCES = {
    "treasury": "bot.data.sources.treasury",  # US Treasury daily par yield curve CSV: yields, same evening
    "fred": "bot.data.sources.fred",  # FRED graph CSV (keyless) or API (FRED_API_KEY): yields, CPI
    "yahoo": "bot.data.sources.yahoo",  # Yahoo Finance through yfinance: ETFs and indices
    "nasdaq": "bot.data.sources.nasdaq",  # Nasdaq historical quotes API: ETFs, keyless fallback
    "bls": "bot.data.sources.bls",  # BLS public API: CPI fallback
    "csv": "bot.data.sources.csv",  # a local date,value[,release_date] file: replays and offline use
}


def get_source(name: str, settings=None):
    """An instance of source `name`, configured by its `sources:` entry in settings.yaml."""
    module = importlib.import_module(SOURCES[name])
    return module.Source(settings)
