"""The validated configuration is cached under the state directory: a hit is the same configuration, any edit
misses, a damaged cache is ignored, and an invalid file is reported from a real parse every time."""

from __future__ import annotations

import shutil

import pytest

import bot
from bot.errors import ConfigError
from bot.settings import cache as config_cache
from bot.settings import load as loaders
from bot.settings import rules_file
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
    for module, name in ((loaders, "load_series"), (loaders, "load_settings"), (rules_file, "load_rules")):
        monkeypatch.setattr(module, name, refuse)


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
    monkeypatch.setattr(rules_file, "load_rules", lambda *a, **k: [])
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


def test_a_hit_imports_no_pydantic(config, tmp_path):
    """What makes `check` cheap: the cache holds plain records (bot.settings.values), so a hit never loads
    pydantic or the models; a miss does, to validate."""
    import os
    import subprocess
    import sys

    probe = ("import sys; from bot.settings.live import LiveConfig; "
             f"LiveConfig({str(config / 'rules.yaml')!r}, {str(config)!r}).get(); "
             "print(sorted(m for m in ('pydantic', 'bot.settings.models', 'bot.settings.rules_file') "
             "if m in sys.modules))")
    env = {**os.environ, "CLOSEBELL_HOME": str(tmp_path / "home")}

    def loaded():
        done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert loaded() == "['bot.settings.models', 'bot.settings.rules_file', 'pydantic']"  # a miss validates
    assert loaded() == "[]"  # a hit


def test_records_answer_like_the_models(config):
    """The running bot reads records; tests hand it models: both answer the same fields and methods."""
    from bot.settings import models, values

    loaded = fresh(config).get()
    iwm = loaded.series["IWM"]
    assert isinstance(iwm, values.SeriesDef) and isinstance(loaded.settings, values.Settings)
    model = models.SeriesDef(**vars(iwm) | {"fallback": vars(iwm.fallback) if iwm.fallback else None})
    assert (model.chain, model.move_limit(), model.primary) == (iwm.chain, iwm.move_limit(), iwm.primary)
    assert models.freeze(model) == iwm
    assert set(vars(loaded.settings.notify)) == set(models.Notify.model_fields)
    with pytest.raises(AttributeError, match="read-only"):
        loaded.settings.notify.charts = False
