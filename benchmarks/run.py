"""Run every benchmark, each in its own process (so peak memory is its own), and print the figures.

    python benchmarks/run.py          # or: make bench
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run(*args):
    subprocess.run([sys.executable, *map(str, args)], check=True, cwd=HERE)


def timed(label, argv, repeat=3):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *map(str, argv)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    print(f"cli: {label}: {best:.2f}s (best of {repeat})")


def timed_cli(label, *args):
    timed(label, ["-m", "bot", *args])


def main():
    sys.path.insert(0, str(HERE))
    from _common import data_dir
    data = data_dir()
    run(HERE / "bench_store.py", "sqlite")
    run(HERE / "bench_store.py", "postgresql")
    run(HERE / "bench_engine.py")
    timed_cli("python -m bot --help", "--help")
    timed("floor: python importing pandas, numpy, pydantic, yaml", ["-c", "import pandas, numpy, pydantic, yaml"])
    timed_cli("check one day end to end", "check", "--data-dir", data, "--date", "2024-07-11")
    timed_cli("backtest all history", "backtest", "--data-dir", data, "--json")
    for extra in sorted(HERE.glob("bench_*.py")):
        if extra.name not in ("bench_store.py", "bench_engine.py"):
            run(extra)


if __name__ == "__main__":
    main()
