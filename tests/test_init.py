"""`python -m bot init [DIR]`: a starter configuration that validates, written once, never overwritten."""

from __future__ import annotations

import stat

from bot.cli import main
from tests.conftest import ROOT

SHIPPED = [name for name in ("rules.yaml", "rules.test.yaml", "series.yaml", "settings.yaml")
           if (ROOT / "config" / name).is_file()]


def test_init_into_an_empty_directory_writes_the_starters_and_they_validate(tmp_path, capsys, data_dir):
    target = tmp_path / "mybot"
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in target.iterdir()) == sorted(SHIPPED + [".env"])
    for name in SHIPPED:
        assert (target / name).read_bytes() == (ROOT / "config" / name).read_bytes()
    assert (target / ".env").read_text() == (ROOT / ".env.example").read_text()
    assert stat.S_IMODE((target / ".env").stat().st_mode) == 0o600  # it will hold the token
    assert f"closebell --config {target} telegram-setup --write" in out
    assert f"closebell --config {target} notify-test" in out and f"closebell --config {target} run" in out
    assert main(["--config", str(target), "validate"]) == 0
    assert "rule(s) valid" in capsys.readouterr().out
    assert main(["--config", str(target), "test-rules", "--data-dir", str(data_dir)]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_init_run_twice_overwrites_nothing_and_says_what_it_kept(tmp_path, capsys):
    target = tmp_path / "mybot"
    main(["init", str(target)])
    (target / "rules.yaml").write_text("rules: []  # mine\n")
    (target / "settings.yaml").unlink()
    capsys.readouterr()
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert (target / "rules.yaml").read_text() == "rules: []  # mine\n"
    assert f"wrote {target / 'settings.yaml'}" in out
    assert f"kept {target / 'rules.yaml'} (already there, not overwritten)" in out
    assert out.count("kept ") == len(SHIPPED)  # every other file, .env included


def test_the_default_directory_is_found_by_validate_without_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CLOSEBELL_CONFIG")
    monkeypatch.chdir(tmp_path)  # no ./config here
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    target = tmp_path / "xdg" / "closebell"
    assert (target / "rules.yaml").is_file() and "closebell telegram-setup --write" in out
    assert main(["validate"]) == 0
    assert f"{target / 'rules.yaml'}: " in capsys.readouterr().out


def test_a_config_directory_in_the_working_directory_comes_before_the_user_one(tmp_path, monkeypatch):
    from bot.settings.paths import config_dir
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CLOSEBELL_CONFIG")
    monkeypatch.chdir(tmp_path)
    assert config_dir() == tmp_path / "xdg" / "closebell"
    (tmp_path / "config").mkdir()
    assert str(config_dir()) == "config"
    monkeypatch.setenv("CLOSEBELL_CONFIG", str(tmp_path / "elsewhere"))
    assert config_dir() == tmp_path / "elsewhere"
