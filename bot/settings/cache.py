"""The validated configuration kept on disk, so a command skips YAML, validation and rule parsing when the
files have not changed since the last one that read them.

Reading a 1,000-rule book costs more than a second (YAML, pydantic, every
expression parsed and checked); the same objects unpickle in a tenth of that.
One cache file per configuration location lives under the state directory
(`$CLOSEBELL_HOME/cache/config-<where>.pickle`, beside the calendar cache),
holding the key it was built for and the (series, settings, rules) built.

Correctness comes first:
- the key is a hash of the three files' bytes (a missing settings file is
  hashed as missing), the bot's version, the Python version, the installed
  files of pydantic, pydantic-core and PyYAML, and the size and time of
  every module of the bot (a developer's
  edit to the parser changes it as surely as a release does): any byte of
  change misses;
- the key is written in a header and compared before anything is unpickled,
  so a cache from an earlier edit is never loaded;
- a cache that cannot be read or unpickled is ignored (and rebuilt by the
  next good read); writing is atomic (a temporary file renamed over the old
  one), so a reader never sees half a file;
- only a configuration that validated is ever written: every error comes
  from a real parse of the files, worded with its file:line:col;
- a configuration is stored only if its files still hash to the key computed
  before they were read, so an edit made while they were being parsed is
  never stored under the old bytes' key.

Why pickle: the cache holds the bot's own objects (the plain records of
bot.settings.values, rule dataclasses with their expression trees: no
pydantic, so a hit never imports it), written by this code into the
user's own state directory, next to the database and lock the bot already
trusts. Unpickling runs code named in the file, so a file there is trusted as
much as the state directory itself is; nothing from elsewhere is ever read
as a cache.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path

import bot
from bot.settings.paths import read_small, state_dir

log = logging.getLogger(__name__)

VALIDATORS = ("pydantic", "pydantic_core", "yaml")
FORMAT = b"closebell-config-cache 2\n"  # bump when the layout of the file changes
_MISSING = b"\x00missing\x00"


@functools.lru_cache(maxsize=1)
def _code() -> bytes:
    """What the cached objects depend on besides the files: versions, and the bot's modules as they are."""
    out = hashlib.sha256(f"closebell {bot.__version__}; python {sys.version}".encode())
    # the libraries that parse and validate, by their installed files: an upgrade rewrites them, and finding
    # them imports nothing (a cache hit must not pay for pydantic)
    for library in VALIDATORS:
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec and spec.origin else ""
        try:
            stat = os.stat(origin)
            out.update(f"{library} {origin} {stat.st_size} {stat.st_mtime_ns}\n".encode())
        except OSError:
            out.update(f"{library} missing\n".encode())
    root = os.path.dirname(bot.__file__)
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in sorted(names):
            if name.endswith(".py"):
                try:
                    stat = os.stat(os.path.join(directory, name))
                except OSError:
                    continue
                out.update(f"{directory[len(root):]}/{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return out.digest()


def key(files: list[Path]) -> str:
    """The hash of the files' bytes (in order) and of the code that reads them."""
    out = hashlib.sha256(_code())
    for path in files:
        try:
            data = read_small(path)  # bounded, never blocks: /dev/zero or a FIFO is refused by the parse
        except FileNotFoundError:
            data = _MISSING
        except (OSError, ValueError) as exc:  # unreadable or refused: a key that never matches; the parse says why
            data = _MISSING + str(exc).encode() + os.urandom(8)
        out.update(len(data).to_bytes(8, "big"))
        out.update(data)
    return out.hexdigest()


def path_for(files: list[Path]) -> Path:
    """The cache file of this configuration location (its files' absolute paths)."""
    where = hashlib.sha256("\n".join(str(Path(p).absolute()) for p in files).encode()).hexdigest()[:16]
    return state_dir() / "cache" / f"config-{where}.pickle"


def load(files: list[Path], wanted: str):
    """The objects cached for key `wanted`, or None (no cache, another key, or a file that cannot be read)."""
    path = "(no state directory)"
    try:
        path = path_for(files)  # inside: a state directory that cannot be used only costs the cache
        with open(path, "rb") as handle:
            header = handle.readline()
            if header != FORMAT or handle.readline().rstrip(b"\n").decode("ascii") != wanted:
                return None
            return pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - anything from a damaged file: ignore it, the files are re-read
        log.debug("configuration cache %s unreadable (%s); reading the files", path, exc)
        return None


def store(files: list[Path], built: str, payload) -> None:
    """Write `payload` for key `built`, atomically; a failure to write only costs the next read its speed."""
    path = path_for(files)
    try:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(FORMAT + built.encode("ascii") + b"\n" + data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except Exception as exc:  # noqa: BLE001 - a read-only or full state directory must not stop the bot
        log.debug("configuration cache %s not written: %s", path, exc)
