"""Where the bot finds its configuration and keeps its state (no pydantic, no YAML: every command asks)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    home = os.environ.get("CLOSEBELL_HOME")
    if home:
        return Path(home)
    import platformdirs  # deliberately lazy: ~10 ms, only when CLOSEBELL_HOME is unset
    return Path(platformdirs.user_data_dir("closebell", appauthor=False))


def config_dir(explicit: str | None = None) -> Path:
    """`--config DIR`, else $CLOSEBELL_CONFIG, else ./config if it exists, else the user's config directory.

    The last is where `python -m bot init` writes by default (platformdirs:
    ~/.config/closebell on Linux), so validate, check and run find it without flags.
    """
    chosen = explicit or os.environ.get("CLOSEBELL_CONFIG")
    if chosen:
        return Path(chosen)
    if Path("config").is_dir():
        return Path("config")
    import platformdirs  # deliberately lazy: ~10 ms, only when neither --config nor ./config says
    return Path(platformdirs.user_config_dir("closebell", appauthor=False))
