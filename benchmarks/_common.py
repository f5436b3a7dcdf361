"""Helpers shared by the benchmark scripts: where the data is, peak memory, timing."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def data_dir() -> Path:
    path = Path(os.environ.get("CLOSEBELL_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not (path / "IWM.csv").is_file():
        sys.exit(f"no shipped history at {path}; set CLOSEBELL_DATA_DIR")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
