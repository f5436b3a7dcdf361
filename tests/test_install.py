"""Installed like a Python tool: `pip install .` gives a `closebell` command, and every `--help` example runs.

The examples are what a user pastes first, so each one is run here against the
shipped configuration, with the shipped history in place of `../shared/data`.
Those that reach the outside world or wait for a person are only parsed (the
list below says why); the rest must exit 0.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import sysconfig
import venv

import pytest

from bot.cli import COMMANDS, build_parser
from tests.conftest import ROOT, subprocess_env

NOT_RUN = {  # example -> why it is parsed only
    "closebell fetch": "fetches from the network",
    "closebell fetch --series IWM DGS10 --since 2024-01-01": "fetches from the network",
    "closebell sources": "fetches from the network",
    "closebell sources --series IWM DGS10 --sessions 20": "fetches from the network",
    "closebell run": "the daemon: runs until stopped",
    "closebell run --once": "fetches from the network",
    "closebell telegram-setup": "waits for a person to write to the bot",
    "closebell telegram-setup --write": "waits for a person to write to the bot",
}


def examples() -> list[str]:
    out = []
    for _help, example, _add, _handler in COMMANDS.values():
        for line in example.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("closebell "):
                out.append(line)
    return out


def test_every_example_is_spelt_as_the_installed_command_and_the_help_says_closebell():
    assert len(examples()) >= len(COMMANDS)
    assert build_parser().prog == "closebell"
    assert all(line.startswith("closebell ") for line in examples())
    for line in NOT_RUN:
        assert line in examples(), f"{line!r} is no longer an example: drop it from NOT_RUN"


@pytest.mark.parametrize("line", [line for line in examples() if line not in NOT_RUN])
def test_every_help_example_runs_against_the_shipped_configuration(line, tmp_path, data_dir, telegram):
    """In a working directory holding a copy of config/ (so `--rules config/rules.yaml` and `--plot x.png`
    stay inside the test), with Telegram's stand-in configured for `notify-test --channel telegram`."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "config", work / "config")
    command, _, redirect = line.partition(">")
    argv = [str(data_dir) if word == "../shared/data" else word for word in shlex.split(command)[1:]]
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=work / "config",
                         XDG_CONFIG_HOME=tmp_path / "xdg", TELEGRAM_CHAT_IDS="1001")
    proc = subprocess.run([sys.executable, "-m", "bot", *argv], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"{line}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    if redirect:
        (work / redirect.strip()).write_text(proc.stdout)
        assert proc.stdout.strip()


def test_pip_install_into_a_fresh_venv_gives_a_working_closebell_command(tmp_path):
    """Offline and fast: the fresh venv sees the shared venv's packages (its dependencies and setuptools)
    through a .pth file, and pip builds the project from a copy of the source without build isolation."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md", ".env.example"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "bot", source / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "config", source / "config")
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    site = subprocess.run([str(target / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(f"{site}/shared.pth", "w") as pth:
        pth.write(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--disable-pip-version-check", str(source)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    outside = tmp_path / "elsewhere"  # not the checkout: `bot` can only come from the installed package
    outside.mkdir()
    env = {"PATH": f"{target / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    helped = subprocess.run(["closebell", "--help"], cwd=outside, env=env, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: closebell ") and "replay" in helped.stdout
    where = subprocess.run([str(target / "bin" / "python"), "-c", "import bot; print(bot.__file__)"], cwd=outside,
                           env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(site), where.stdout
    version = subprocess.run(["closebell", "--version"], cwd=outside, env=env, capture_output=True, text=True,
                             timeout=60)
    assert version.stdout.strip() == "closebell 0.1.0"
    # init finds the shipped configuration in the installation (share/closebell), not only in a checkout
    starters = tmp_path / "starters"
    init = subprocess.run(["closebell", "init", str(starters)], cwd=outside, env=env, capture_output=True,
                          text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    assert sorted(p.name for p in starters.iterdir()) == [".env", "rules.test.yaml", "rules.yaml", "series.yaml",
                                                          "settings.yaml"]
    assert (starters / "rules.yaml").read_bytes() == (ROOT / "config" / "rules.yaml").read_bytes()
    assert "closebell --config" in init.stdout and "python -m bot" not in init.stdout
