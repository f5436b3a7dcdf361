"""Where the bot finds its configuration and keeps its state (no pydantic, no YAML: every command asks)."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

from bot.errors import StoreError

# The dates a command, a tests file or a data file may name. pandas holds a day as nanoseconds since 1970,
# which ends in 1677 and 2262 (0001-01-01 would be an OutOfBoundsDatetime traceback); no market data is
# older than 1900, and a rule about 2200 is a typo.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def out_of_range(day: date) -> str | None:
    """Why `day` is refused (before EARLIEST_DATE or after LATEST_DATE), or None."""
    if EARLIEST_DATE <= day <= LATEST_DATE:
        return None
    return f"{day.isoformat()} is out of range; write a date between {EARLIEST_DATE} and {LATEST_DATE}"

# A settings, series, rules or tests file is written by hand; anything larger is a mistake (or /dev/zero).
MAX_CONFIG_BYTES = 1_000_000

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def read_small(path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes; ValueError saying why not, decided
    before a byte is read.

    Opened without blocking and judged by fstat of what was opened: a FIFO would
    hang an ordinary open until a writer comes, /dev/zero never ends, and a
    1.5 GB sparse file costs 1.5 GB to read before its length could be checked.
    OSError (no such file, permission) propagates as open raises it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        kind = next((name for test, name in _KINDS if test(info.st_mode)), None)
        if kind or not stat.S_ISREG(info.st_mode):
            raise ValueError(f"is {kind + ', ' if kind else ''}not a regular file; give the path of a text file")
        if info.st_size > limit:
            raise ValueError(f"file is {info.st_size:,} bytes; at most {limit:,} are read")
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while it was read
        raise ValueError(f"file is over {limit:,} bytes; at most {limit:,} are read")
    return data


def state_dir() -> Path:
    """$CLOSEBELL_HOME, else the user's data directory; StoreError if CLOSEBELL_HOME names something that
    is not a directory (the store, its lock and caches live in it)."""
    home = os.environ.get("CLOSEBELL_HOME")
    if home:
        if os.path.exists(home) and not os.path.isdir(home):
            raise StoreError(f"CLOSEBELL_HOME={home} is a file, not a directory; point it at a directory "
                             "(the store and its caches are kept there) or remove the file")
        return Path(home)
    import platformdirs  # deliberately lazy: ~10 ms, only when CLOSEBELL_HOME is unset
    return Path(platformdirs.user_data_dir("closebell", appauthor=False))


def config_dir(explicit: str | None = None) -> Path:
    """`--config DIR`, else $CLOSEBELL_CONFIG, else ./config if it exists, else the user's config directory.

    The last is where `closebell init` writes by default (platformdirs:
    ~/.config/closebell on Linux), so validate, check and run find it without flags.
    """
    chosen = explicit or os.environ.get("CLOSEBELL_CONFIG")
    if chosen:
        return Path(chosen)
    if Path("config").is_dir():
        return Path("config")
    import platformdirs  # deliberately lazy: ~10 ms, only when neither --config nor ./config says
    return Path(platformdirs.user_config_dir("closebell", appauthor=False))
