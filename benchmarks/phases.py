"""Where one command's time goes beyond the import floor, phase by phase, in one process.

    python benchmarks/phases.py check                  # check --date 2024-07-11, shipped rules
    python benchmarks/phases.py backtest [COUNT]       # backtest --json of the COUNT-rule book (default 100)

Runs the steps the command runs (same functions, same order) and prints the
wall time of each: the floor's imports, the bot's own imports, reading the
YAML, the CSV files, the calendar, the frame, the evaluation, the report, the
JSON. For a profile of one phase, run the command under cProfile instead:
    python -m cProfile -s cumtime -m bot check --date 2024-07-11 --data-dir DATA
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

_last = time.perf_counter()
_rows: list[tuple[str, float]] = []


def lap(name: str) -> None:
    global _last
    now = time.perf_counter()
    _rows.append((name, now - _last))
    _last = now


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv):
    verb = argv[0] if argv else "check"
    count = int(argv[1]) if len(argv) > 1 else 100
    os.environ.setdefault("CLOSEBELL_HOME", tempfile.mkdtemp(prefix="closebell-phases-"))
    import pandas, yaml, exchange_calendars  # noqa: E401,F401 - the floor
    lap("floor imports (pandas, yaml, exchange_calendars)")
    from _common import data_dir
    from bot.app.evaluation import series_needed
    from bot.data import calendar, load
    from bot.engine import frame as frames
    from bot.engine.evaluate import evaluate
    from bot.settings.live import LiveConfig
    lap("bot imports (app core, engine, data)")
    data = str(data_dir())
    if verb == "backtest":
        from rules_book import write_config
        config_dir = write_config(Path(tempfile.mkdtemp(prefix="closebell-phases-")), count)
    else:
        config_dir = ROOT / "config"
    global _last
    _last = time.perf_counter()  # the set-up above (writing the rule book) is not the command's
    config = LiveConfig(config_dir / "rules.yaml", config_dir)
    loaded = config.get()
    lap(f"config: yaml + validation + rules ({len(loaded.rules)} rules)")
    names = series_needed(loaded.rules)
    observations = load.observations(names, data_dir=data, series_defs=loaded.series,
                                     as_of=None if verb == "backtest" else "2024-07-11")
    lap(f"data: {len(names)} CSV files read and cleaned")
    firsts = [o.index.min() for n, o in observations.items() if loaded.series[n].frequency == "daily"]
    lasts = [o.index.max() for n, o in observations.items() if loaded.series[n].frequency == "daily"]
    sessions = calendar.sessions(min(firsts), max(lasts))
    lap(f"calendar: {len(sessions)} sessions (cache in CLOSEBELL_HOME)")
    frame = frames.build(observations, {n: loaded.series[n].frequency for n in names}, sessions)
    lap("frame build")
    ev = evaluate(loaded.rules, frame)
    lap("evaluate")
    if verb == "check":
        i = frame.index_of("2024-07-11")
        texts = [(ev.values(r, i), ev.message(r, i), ev.gaps(r, i)) for r in loaded.rules]
        lap(f"check: values, messages, gaps for {len(texts)} rules")
    else:
        from bot.app.backtest import BacktestResult, backtest
        from bot.app.evaluation import Prepared
        from bot.commands.backtest import write_json
        result = backtest(Prepared(ev, observations))
        firings = sum(r.firings for r in result.reports)
        lap(f"backtest report ({firings} firings)")
        out, sys.stdout = sys.stdout, io.StringIO()
        try:
            write_json(result, pretty=False)
            size = len(sys.stdout.getvalue())
        finally:
            sys.stdout = out
        lap(f"json ({size / 1e6:.1f} MB)")
    total = sum(s for _, s in _rows)
    for name, seconds in _rows:
        print(f"{seconds * 1000:8.0f} ms  {name}")
    print(f"{total * 1000:8.0f} ms  in all; RSS now {rss_mb():.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
