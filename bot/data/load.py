"""Observations for the engine, from the store or from `--data-dir`, as known on a date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from bot.data.sources import csv as csv_source
from bot.data.sources.base import known_by
from bot.errors import DataError


def from_data_dir(data_dir: str, names, as_of: date | None = None, series_defs=None,
                  today: date | None = None) -> dict[str, pd.DataFrame]:
    """Each series from DIR/NAME.csv, through the same cleaning as `fetch` (bot.data.clean).

    `series_defs` gives each series its units (a price must be > 0, no spike
    past its move limit); `today` rejects rows dated after it.
    """
    out = {}
    for name in names:
        series = (series_defs or {}).get(name)
        out[name] = known_by(csv_source.read(Path(data_dir) / f"{name}.csv", series=series, today=today), as_of)
    return out


def from_store(store, names, as_of: date | None = None) -> dict[str, pd.DataFrame]:
    out = store.read_observations(list(names), known_by=as_of)
    missing = [n for n in names if n not in out]
    if missing:
        raise DataError(f"no stored data for {', '.join(missing)}: run `closebell fetch` first "
                        "(or pass --data-dir DIR)")
    return out


def observations(names, store=None, data_dir: str | None = None, as_of: date | None = None,
                 series_defs=None, today: date | None = None):
    """From `data_dir` (cleaned like a fetch: pass `series_defs` and `today` for every check), else the store."""
    if data_dir:
        return from_data_dir(data_dir, names, as_of, series_defs=series_defs, today=today)
    return from_store(store, names, as_of)
