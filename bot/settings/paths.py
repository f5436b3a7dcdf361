"""Where the bot keeps its state: $CLOSEBELL_HOME, else the user's data directory."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    home = os.environ.get("CLOSEBELL_HOME")
    if home:
        return Path(home)
    import platformdirs  # deliberately lazy: ~10 ms, only when CLOSEBELL_HOME is unset
    return Path(platformdirs.user_data_dir("closebell", appauthor=False))
