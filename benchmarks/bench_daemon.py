"""The daemon's costs: one daily job with a warm store (CPU and wall, in process).

    python benchmarks/bench_daemon.py                      # the daily job
    python benchmarks/bench_daemon.py --all [--idle-seconds 60]   # also a year of replay and an idle `run`

The replay and the idle daemon's memory are rows of benchmarks/run.py (as ratios to the import floor, and
VmRSS after catch-up); `--all` keeps the longer standalone versions here (idle RSS sampled every second).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _common import ROOT, data_dir, peak_rss_mb, timer


def daily_job(home: Path):
    """CPU time of the job for one session, the store already holding all history before it."""
    os.environ["CLOSEBELL_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    import io
    from bot.app import App
    from bot.app.evaluation import series_needed
    from bot.daemon.replay import Arrivals
    from bot.notify.console import Notifier
    from bot.settings.live import LiveConfig
    from bot.store import Store
    store = Store(f"sqlite:///{home / 'job.db'}")
    config = LiveConfig(ROOT / "config" / "rules.yaml", ROOT / "config")
    arrivals = Arrivals(str(data_dir()))
    loaded = config.get()
    arrivals.preload(store, loaded, series_needed(loaded.rules), date(2024, 7, 10))
    app = App(config, store=store, fetcher=arrivals, notifiers={"console": Notifier(stream=io.StringIO())})
    app.session_job.run_session("2024-07-10")  # warm: imports, caches
    cpu = time.process_time()
    with timer() as wall:
        outcome = app.session_job.run_session("2024-07-11")
    cpu = time.process_time() - cpu
    print(f"daemon: one daily job (2024-07-11, warm store): {cpu * 1000:.0f} ms CPU, {wall.seconds * 1000:.0f} ms "
          f"wall; {outcome.line()}")


def replay_year(home: Path):
    env = dict(os.environ, CLOSEBELL_HOME=str(home), PYTHONPATH=str(ROOT))
    with timer() as took:
        subprocess.run([sys.executable, "-m", "bot", "replay", "--data-dir", str(data_dir()), "--from", "2024-01-01",
                        "--to", "2024-12-31", "--fresh"], check=True, cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"daemon: replay of 2024 (252 sessions): {took.seconds:.1f}s ({took.seconds / 252 * 1000:.0f} ms/session)")


def idle_run(home: Path, seconds: int):
    """Resident memory of `run` waiting for the next close (catch-up done, scheduler idle)."""
    env = dict(os.environ, CLOSEBELL_HOME=str(home), PYTHONPATH=str(ROOT), CLOSEBELL_HTTP_BACKOFF="0")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    subprocess.run([sys.executable, "-m", "bot", "fetch", "--data-dir", str(data_dir())], check=True, cwd=ROOT,
                   env=env, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    samples = []
    try:
        for _ in range(seconds):
            time.sleep(1)
            with open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        samples.append(int(line.split()[1]) / 1024)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"daemon: idle `run` over {seconds}s: RSS {samples[-1]:.0f} MB at the end, max {max(samples):.0f} MB, "
          f"growth over the last half {samples[-1] - samples[len(samples) // 2]:+.1f} MB; exit on SIGTERM "
          f"{proc.returncode}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--all", action="store_true", help="also replay 2024 and sample an idle `run`")
    parser.add_argument("--idle-seconds", type=int, default=60)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="closebell-bench-"))
    try:
        if args.all:
            replay_year(base / "replay")
            idle_run(base / "idle", args.idle_seconds)
        daily_job(base / "job")
        print(f"daemon: benchmark process peak RSS {peak_rss_mb():.0f} MB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
