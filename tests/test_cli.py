"""The command line: every command documented with an example, errors on stderr with exit codes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bot.cli import COMMANDS, build_parser
from tests.conftest import ROOT, subprocess_env


def bot(*args):
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=subprocess_env(), cwd=ROOT, timeout=120)


def test_help_lists_every_command():
    proc = bot("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", proc.stdout, re.M), name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help_with_an_example(name):
    help_text = build_parser()._subparsers._group_actions[0].choices[name].format_help()
    assert "example:" in help_text and "closebell " in help_text.split("example:")[1]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_is_in_the_readme(name):
    assert f"`{name}" in (ROOT / "README.md").read_text(), f"README does not document '{name}'"


def test_help_stays_light_no_pandas_or_matplotlib():
    code = ("import sys; from bot.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'telegram', 'sqlalchemy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                          cwd=ROOT, timeout=60)
    assert proc.stdout.strip().endswith("[]"), proc.stdout


def test_no_command_prints_help_and_exits_2():
    proc = bot()
    assert proc.returncode == 2 and "commands" in proc.stdout


def test_a_bad_date_is_a_usage_error_on_stderr():
    proc = bot("check", "--date", "11/07/2024")
    assert proc.returncode == 2
    assert "write YYYY-MM-DD" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("argv, named", [
    (["check", "--date", "2024-07-11"], "check"),
    (["--config", "check", "validate"], "validate"),  # --config's value is not the command
    (["-v", "--config=cfg", "backtest"], "backtest"),
    (["chek"], None),  # not ours: the whole parser answers, with its did-you-mean
    (["--help"], None),
    ([], None),
])
def test_the_command_named_on_the_line(argv, named):
    from bot.cli import named_command
    assert named_command(argv) == named


def test_every_example_parses_the_same_with_only_its_own_parser():
    """main() builds only the named command's sub-parser; every example in --help must read the same."""
    import shlex

    from bot.cli import COMMANDS, build_parser, named_command
    full = build_parser()
    lines = [line for _help, example, _add, _handler in COMMANDS.values() for line in example.splitlines()
             if line.strip().startswith("closebell ")]
    examples = [shlex.split(line.split("#")[0].split(">")[0])[1:] for line in lines]  # no comment, no redirect
    assert len(examples) >= len(COMMANDS)
    for argv in examples:
        assert build_parser(only=named_command(argv)).parse_args(argv) == full.parse_args(argv), argv


def test_a_pipe_closed_early_ends_quietly(data_dir):
    proc = subprocess.run(f"{sys.executable} -m bot backtest --all --data-dir {data_dir} | head -1", shell=True,
                          cwd=ROOT, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.stdout.startswith("Backtest ") and proc.stderr == ""
