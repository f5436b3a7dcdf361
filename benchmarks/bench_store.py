"""Load the full shipped history into an empty store, then an incremental no-op update.

    python benchmarks/bench_store.py [sqlite|postgresql]
"""

from __future__ import annotations

import sys
import tempfile

from _common import ROOT, data_dir, peak_rss_mb, timer

from bot.data.fetch import update
from bot.settings.load import load_series
from bot.store import Store

def main(kind="sqlite"):
    with tempfile.TemporaryDirectory(prefix="closebell-store-") as tmp:
        measure(kind, tmp)


def measure(kind, tmp):
    series = load_series(str(ROOT / "config" / "series.yaml"))
    if kind == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
    else:
        import os
        import sqlalchemy as sa
        from bot.store.store import database_url
        url = database_url(os.environ.get("CLOSEBELL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/test"))
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS bench CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA bench"))
        url += "?options=-csearch_path%3Dbench"
    store = Store(url)
    from bot.clock import SYSTEM
    today = SYSTEM.today_et()
    with timer() as full:
        results = update(store, series, data_dir=str(data_dir()), today=today)
    rows = sum(r.rows for r in results)
    with timer() as noop:
        again = update(store, series, data_dir=str(data_dir()), today=today)
    assert sum(r.rows for r in again) == 0
    print(f"store[{kind}] full history: {rows:,} rows in {full.seconds:.2f}s ({rows / full.seconds:,.0f} rows/s)")
    print(f"store[{kind}] incremental no-op update: {noop.seconds:.3f}s")
    print(f"store[{kind}] peak RSS: {peak_rss_mb():.0f} MB")
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
