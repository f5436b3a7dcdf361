"""`closebell init [DIR]`: a starter configuration, so nobody copies config files by hand.

Writes rules.yaml, rules.test.yaml (when the repository ships one),
series.yaml, settings.yaml and a commented .env template into DIR (default:
the user's config directory, which validate, check and run find without
flags). An existing file is never overwritten: it is kept, and said so.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
from pathlib import Path

import platformdirs

from bot.errors import ConfigError
from bot.settings.paths import config_dir

CHECKOUT = Path(__file__).resolve().parents[2]


def shipped_root() -> Path:
    """Where the shipped configuration lies: the checkout this module runs from, or, when installed
    (`pip install .`, `pipx install .`), `<prefix>/share/closebell`, where pyproject.toml's data-files put
    `config/*.yaml` and `.env.example` in the checkout's layout. A `pip install --user` puts them under
    the user base instead; the checkout's path is returned when none holds them (the error names it)."""
    for root in (CHECKOUT, Path(sys.prefix) / "share" / "closebell", Path(site.getuserbase()) / "share" / "closebell"):
        if (root / "config" / "rules.yaml").is_file():
            return root
    return CHECKOUT


ROOT = shipped_root()
STARTERS = ("rules.yaml", "rules.test.yaml", "series.yaml", "settings.yaml")
REQUIRED = ("rules.yaml", "series.yaml", "settings.yaml")


def default_dir() -> Path:
    return Path(platformdirs.user_config_dir("closebell", appauthor=False))


def sources(root: Path = ROOT) -> dict[str, Path]:
    """Target file name -> the shipped file it is copied from (rules.test.yaml only where it exists)."""
    out = {name: root / "config" / name for name in STARTERS if (root / "config" / name).is_file()
           or name in REQUIRED}
    out[".env"] = root / ".env.example"
    return out


def write_starters(target: Path, root: Path = ROOT) -> tuple[list[Path], list[Path]]:
    """(written, kept): copy each starter into `target` unless a file of that name is already there."""
    target.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    for name, source in sources(root).items():
        destination = target / name
        if destination.exists():
            kept.append(destination)
            continue
        if not source.is_file():
            raise ConfigError(f"{source}: the starter file is missing from this installation")
        shutil.copyfile(source, destination)
        if name == ".env":
            os.chmod(destination, 0o600)  # it will hold secrets
        written.append(destination)
    return written, kept


def _config_flag(target: Path) -> str:
    """'' when validate/check/run will find `target` without flags, else '--config DIR '."""
    return "" if config_dir().resolve() == target.resolve() else f"--config {target} "


def run(args) -> int:
    target = Path(args.dir).expanduser() if args.dir else default_dir()
    written, kept = write_starters(target)
    for path in written:
        print(f"wrote {path}")
    for path in kept:
        print(f"kept {path} (already there, not overwritten)")
    flag = _config_flag(target)
    print(f"\nNext: put your bot token from @BotFather in {target / '.env'} (TELEGRAM_BOT_TOKEN=...), then run")
    print(f"  closebell {flag}telegram-setup --write   # finds your chat id, writes TELEGRAM_CHAT_IDS")
    print(f"  closebell {flag}notify-test              # a sample alert on your phone")
    print(f"  closebell {flag}run                      # the bot: an alert after every close")
    return 0
