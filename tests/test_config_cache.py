"""The validated configuration is cached under the state directory: a hit is the same configuration, any edit
misses, a damaged cache is ignored, and an invalid file is reported from a real parse every time."""

from __future__ import annotations

import shutil

import pytest

import bot
from bot.errors import ConfigError
from bot.settings import cache as config_cache
from bot.settings import live
from bot.settings.live import LiveConfig
from tests.conftest import ROOT


@pytest.fixture
def config(tmp_path):
    """A copy of the shipped configuration that a test may edit."""
    directory = tmp_path / "config"
    directory.mkdir()
    for name in ("series.yaml", "settings.yaml", "rules.yaml"):
        shutil.copy(ROOT / "config" / name, directory / name)
    return directory


def fresh(directory) -> LiveConfig:
    """A new process's view of the configuration: nothing held in memory, only the files and the cache."""
    return LiveConfig(directory / "rules.yaml", directory)


def no_parsing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the files were parsed; the cache was expected to answer")
    for name in ("load_series", "load_settings", "load_rules"):
        monkeypatch.setattr(live, name, refuse)


def test_a_hit_gives_the_same_configuration_without_parsing(config, monkeypatch):
    first = fresh(config).get()
    no_parsing(monkeypatch)
    second = fresh(config).get()
    assert (second.rules, second.series, second.settings) == (first.rules, first.series, first.settings)


def test_an_edit_of_one_byte_misses(config, monkeypatch):
    fresh(config).get()
    rules = config / "rules.yaml"
    text = rules.read_text()
    assert "cooldown: 15" in text
    rules.write_text(text.replace("cooldown: 15", "cooldown: 16", 1))
    edited = fresh(config).get()
    assert 16 in [r.cooldown for r in edited.rules]


def test_an_edit_of_the_series_file_misses(config):
    fresh(config).get()
    series = config / "series.yaml"
    series.write_text(series.read_text().replace("CPIAUCSL:", "CPIAUCSL2:", 1))
    with pytest.raises(ConfigError, match="unknown series 'CPIAUCSL'"):
        fresh(config).get()


def test_another_version_of_the_bot_misses(config, monkeypatch):
    fresh(config).get()
    monkeypatch.setattr(bot, "__version__", bot.__version__ + ".1")
    config_cache._code.cache_clear()
    monkeypatch.setattr(live, "load_rules", lambda *a, **k: [])
    try:
        assert fresh(config).get().rules == []
    finally:
        config_cache._code.cache_clear()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_cache_is_ignored_and_rebuilt(config, damage):
    first = fresh(config).get()
    [path] = (config_cache.path_for(fresh(config).files()).parent).glob("config-*.pickle")
    data = path.read_bytes()
    header = data[:data.index(b"\n", len(config_cache.FORMAT)) + 1]  # the format line and the key
    path.write_bytes({"garbage": header + b"\x80\x05not a pickle", "truncated": data[:len(data) // 2],
                      "empty": b""}[damage])
    assert fresh(config).get().rules == first.rules
    assert path.read_bytes() == data  # rebuilt by the read that ignored it


def test_an_invalid_file_raises_every_time_and_is_never_cached(config):
    rules = config / "rules.yaml"
    rules.write_text(rules.read_text().replace("cooldown: 15", "cooldwn: 15", 1))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"rules.yaml:\d+:\d+: unknown field 'cooldwn'; did you mean "
                                              "'cooldown'"):
            fresh(config).get()
    assert not config_cache.path_for(fresh(config).files()).exists()


def test_an_invalid_edit_of_a_cached_configuration_is_reported(config):
    fresh(config).get()
    rules = config / "rules.yaml"
    rules.write_text(rules.read_text().replace("cooldown: 15", "cooldown: -15", 1))
    with pytest.raises(ConfigError, match="cooldown"):
        fresh(config).get()
