"""100 rules over every session of the shipped history, vectorized.

    python benchmarks/bench_engine.py
"""

from __future__ import annotations

import itertools

from _common import ROOT, data_dir, peak_rss_mb, timer

from bot.app.evaluation import prepare, series_needed
from bot.data import load
from bot.engine import frame as frames
from bot.engine.evaluate import evaluate
from bot.settings.rules_file import loads_rules
from bot.settings.load import load_series

from rules_book import TEMPLATES  # the mixed expression templates, one list for every benchmark


def rules_text(count=100):
    combos = itertools.product(TEMPLATES, (5, 10, 20, 63), (1, 2, 3, 4))
    lines = ["rules:"]
    for i, (template, n, k) in zip(range(count), itertools.cycle(combos)):
        lines.append(f"  - id: r{i}\n    when: \"{template.format(n=n, k=k)}\"\n    cooldown: {i % 7}")
    return "\n".join(lines) + "\n"


def main():
    series = load_series(str(ROOT / "config" / "series.yaml"))
    rules = loads_rules(rules_text(), series)
    observations = load.observations(series_needed(rules), data_dir=str(data_dir()))
    from bot.data import calendar
    sessions = calendar.sessions(min(o.index.min() for o in observations.values()),
                                 max(o.index.max() for o in observations.values()))
    frequencies = {n: series[n].frequency for n in observations}
    with timer() as build:
        frame = frames.build(observations, frequencies, sessions)
    best = None
    for _ in range(5):
        with timer() as run:
            evaluation = evaluate(rules, frame)
        best = run.seconds if best is None else min(best, run.seconds)
    total = len(rules) * len(frame)
    fires = sum(int(f.sum()) for f in evaluation.fires.values())
    print(f"engine: {len(rules)} rules x {len(frame):,} sessions = {total:,} rule-sessions")
    print(f"engine: frame build {build.seconds * 1000:.0f} ms; evaluation {best * 1000:.0f} ms (best of 5) "
          f"= {total / best:,.0f} rule-sessions/s; {fires} firings")
    with timer() as whole:
        prepare(rules, series, data_dir=str(data_dir()))
    print(f"engine: load + build + evaluate from CSV: {whole.seconds * 1000:.0f} ms")
    print(f"engine: peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
