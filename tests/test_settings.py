"""settings.yaml and series.yaml: typed, validated once, mistakes reported at file:line:col."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings.load import load_series, load_settings
from tests.conftest import ROOT


def test_the_shipped_settings_and_series_are_valid():
    settings = load_settings(ROOT / "config" / "settings.yaml")
    assert settings.schedule.offset_minutes == 30 and settings.notify.default is None
    series = load_series(ROOT / "config" / "series.yaml")
    assert series["DGS10"].chain[0].source == "treasury" and series["DGS10"].chain[1].source == "fred"
    assert series["CPIAUCSL"].frequency == "monthly"


@pytest.mark.parametrize("name,text,where,words", [
    ("settings.yaml", "schedule:\n  ofset_minutes: 45\n", "2:3", "unknown field 'ofset_minutes'; did you mean "
                                                                  "'offset_minutes'?"),
    ("settings.yaml", "schedule:\n  deadline: 25:00\n", "2:13", "'deadline'"),
    ("settings.yaml", "notify:\n  default: [sms]\n", "2:13", "'console', 'telegram', 'email' or 'apprise'"),
    ("settings.yaml", "sources:\n  tresury: {base_url: x}\n", "2:3", "unknown source 'tresury'; did you mean "
                                                                      "'treasury'?"),
    ("series.yaml", "series:\n  IWM: {source: yahooo}\n", "2:17", "unknown source 'yahooo'; did you mean 'yahoo'?"),
    ("series.yaml", "series:\n  IWM: {source: yahoo, unit: price}\n", "2:24", "unknown field 'unit'; did you "
                                                                              "mean 'units'?"),
    ("series.yaml", "series:\n  10Y: {source: fred}\n", "2:3", "must start with a letter"),
    ("series.yaml", "series:\n  CPI: {source: fred, frequency: weekly}\n", "2:34", "'daily' or 'monthly'"),
])
def test_a_settings_mistake_is_reported_at_its_place(tmp_path, name, text, where, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        (load_settings if name == "settings.yaml" else load_series)(path)
    first = str(info.value.problems[0])
    assert first.startswith(f"{path}:{where}: "), first
    assert words in first, first
