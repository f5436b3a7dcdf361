"""The store: the same specification on a SQLite file and on the PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from bot.data.sources.base import observations
from bot.store import Store
from bot.store import schema
from bot.store.store import database_url
from tests.conftest import subprocess_env


def frame(rows, releases=None):
    return observations([d for d, _ in rows], [v for _, v in rows], releases)


def test_new_store_is_at_the_latest_schema_version(store):
    assert store.version() == schema.VERSION


def test_write_reports_new_rows_and_a_repeat_writes_nothing(store):
    data = frame([("2024-07-10", 100.0), ("2024-07-11", 103.59)])
    assert store.write_observations("IWM", data, "csv") == 2
    assert store.write_observations("IWM", data, "csv") == 0


def test_a_revised_value_is_updated_and_counted(store):
    store.write_observations("IWM", frame([("2024-07-10", 100.0)]), "yahoo")
    assert store.write_observations("IWM", frame([("2024-07-10", 100.5)]), "nasdaq") == 1
    stored = store.read_observations(["IWM"])["IWM"]
    assert stored["value"].tolist() == [100.5]
    assert stored["source"].tolist() == ["nasdaq"]


def test_reading_as_of_a_date_hides_cpi_values_not_yet_released(store):
    cpi = frame([("2024-05-01", 313.1), ("2024-06-01", 313.0)], ["2024-06-12", "2024-07-11"])
    store.write_observations("CPIAUCSL", cpi, "fred")
    before = store.read_observations(["CPIAUCSL"], known_by=date(2024, 7, 10))["CPIAUCSL"]
    on = store.read_observations(["CPIAUCSL"], known_by=date(2024, 7, 11))["CPIAUCSL"]
    assert list(before.index.strftime("%Y-%m")) == ["2024-05"]
    assert list(on.index.strftime("%Y-%m")) == ["2024-05", "2024-06"]


def test_a_known_release_date_is_not_replaced_by_an_unknown_one(store):
    store.write_observations("CPIAUCSL", frame([("2024-06-01", 313.0)], ["2024-07-11"]), "fred")
    store.write_observations("CPIAUCSL", frame([("2024-06-01", 313.0)]), "bls", first_seen=date(2024, 8, 1))
    stored = store.read_observations(["CPIAUCSL"])["CPIAUCSL"]
    assert stored["release_date"].iloc[0] == pd.Timestamp("2024-07-11")


def test_a_value_without_release_date_is_dated_when_first_seen(store):
    store.write_observations("CPIAUCSL", frame([("2024-06-01", 313.0)]), "bls", first_seen=date(2024, 7, 11))
    stored = store.read_observations(["CPIAUCSL"])["CPIAUCSL"]
    assert stored["release_date"].iloc[0] == pd.Timestamp("2024-07-11")


def test_last_dates_and_fetch_records(store):
    store.write_observations("SPY", frame([("2024-07-10", 1.0), ("2024-07-11", 2.0)]), "csv")
    store.record_fetch("SPY", "yahoo", False, 0, "HTTP 500")
    store.record_fetch("SPY", "nasdaq", True, 2)
    assert store.last_dates() == {"SPY": date(2024, 7, 11)}
    assert store.last_fetches()["SPY"]["source"] == "nasdaq"


def test_newest_dates_per_series_match_a_grouped_scan_of_every_row(store):
    """last_dates and last_release_dates seek per series; the answer is the one a full GROUP BY gives."""
    store.write_observations("SPY", frame([("2024-07-10", 1.0), ("2024-07-11", 2.0)]), "csv")
    store.write_observations("CPIAUCSL", frame([("2024-05-01", 313.1), ("2024-06-01", 313.0)],
                                               ["2024-06-12", "2024-07-11"]), "fred")
    store.write_observations("CPIAUCSL", frame([("2024-04-01", 312.0)]), "bls", first_seen=date(2024, 8, 1))
    store.write_observations("AAA", frame([("1990-01-02", 5.0)]), "csv")
    store.write_observations("Z_LAST", frame([("2024-07-12", 7.0)]), "csv")
    obs = schema.observations
    with store.engine.connect() as conn:
        dates = dict(conn.execute(sa.select(obs.c.series, sa.func.max(obs.c.date)).group_by(obs.c.series)).all())
        releases = dict(conn.execute(sa.select(obs.c.series, sa.func.max(obs.c.release_date))
                                     .where(obs.c.release_date.is_not(None)).group_by(obs.c.series)).all())
    assert store.last_dates() == dates == {"AAA": date(1990, 1, 2), "CPIAUCSL": date(2024, 6, 1),
                                           "SPY": date(2024, 7, 11), "Z_LAST": date(2024, 7, 12)}
    assert store.last_release_dates() == releases == {"CPIAUCSL": date(2024, 8, 1)}


def test_an_empty_store_has_no_newest_dates(store):
    assert (store.last_dates(), store.last_release_dates()) == ({}, {})


def test_a_first_load_and_later_writes_read_back_as_a_fresh_process_reads_them(store, store_url):
    """The read cache a write fills (whole series on a first load, merged rows after) equals the stored rows."""
    days = pd.bdate_range("2024-01-01", periods=300)
    store.write_observations("IWM", observations(days, [float(i) for i in range(300)]), "csv")
    first = store.read_observations(["IWM"])["IWM"]
    revised = observations([days[10], days[-1] + pd.Timedelta(days=1)], [99.5, 400.0])
    assert store.write_observations("IWM", revised, "yahoo") == 2
    after = store.read_observations(["IWM"])["IWM"]
    fresh = Store(store_url)
    try:
        stored = fresh.read_observations(["IWM"])["IWM"]
    finally:
        fresh.close()
    pd.testing.assert_frame_equal(first, stored.drop(stored.index[-1]).assign(
        value=lambda f: f["value"].where(f.index != days[10], 10.0), source="csv"))
    pd.testing.assert_frame_equal(after, stored)
    assert (len(after), after["value"].iloc[10], after["source"].iloc[10], after["value"].iloc[-1]) == \
        (301, 99.5, "yahoo", 400.0)


def test_an_older_store_is_migrated_forward(store_url):
    # Build a version-1 store by hand, as the first release left it.
    from bot.store.store import database_url
    engine = sa.create_engine(database_url(store_url))
    with engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            table.drop(conn, checkfirst=True)
        schema.MIGRATIONS[0](conn)
        conn.execute(schema.meta.insert().values(key="schema_version", value="1"))
        conn.execute(schema.observations.insert().values(series="IWM", date=date(2024, 7, 11), value=1.0,
                                                         source="csv", fetched_at=pd.Timestamp.now(tz="UTC")))
    engine.dispose()
    upgraded = Store(store_url)
    assert upgraded.version() == schema.VERSION
    assert upgraded.count_observations() == {"IWM": 1}
    upgraded.close()


def test_a_process_killed_mid_write_leaves_the_store_as_before(store_url, tmp_path):
    """SIGKILL while a large write is under way: afterwards the series holds all or nothing."""
    store = Store(store_url)
    store.write_observations("IWM", frame([("2000-01-03", 1.0)]), "csv")
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import pandas as pd
        import sqlalchemy as sa
        from bot.store import Store
        from bot.data.sources.base import observations
        store = Store({store_url!r})
        days = pd.bdate_range("2000-01-04", periods=20000)
        # die inside the transaction, after the insert ran but before commit
        @sa.event.listens_for(store.engine, "commit")
        def die(conn):
            print("committing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        store.write_observations("IWM", observations(days, range(2, 20002)), "csv")
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=subprocess_env())
    assert proc.returncode == -9, proc.stderr
    assert "committing" in proc.stdout
    assert Store(store_url).count_observations() == {"IWM": 1}
    store.close()


def test_a_mute_given_in_new_york_time_expires_at_that_moment(store):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    et = ZoneInfo("America/New_York")
    until = datetime(2024, 7, 15, 9, 0, tzinfo=et)
    store.mute("small-cap-trap", until)
    assert "small-cap-trap" in store.mutes(until - timedelta(minutes=1))
    assert store.mutes(until + timedelta(minutes=1)) == {}
    assert store.mutes(until - timedelta(minutes=1))["small-cap-trap"] == until


def test_a_version_2_store_gains_outbox_claims_and_its_unleased_sending_rows_are_recovered(store_url):
    """A store left by the previous release, a row caught mid-send: after the upgrade, recovery frees it."""
    engine = sa.create_engine(database_url(store_url))
    when = datetime(2024, 7, 11, 21, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            table.drop(conn, checkfirst=True)
        schema.MIGRATIONS[0](conn)
        schema.MIGRATIONS[1](conn)
        conn.execute(schema.meta.insert().values(key="schema_version", value="2"))
        conn.execute(sa.text("INSERT INTO outbox (rule_id, session, channel, severity, payload, status, attempts, "
                             "next_attempt_at, last_error, created_at) VALUES ('r1', '2024-07-11', 'console', "
                             "'warning', '{}', 'sending', 0, :t, '', :t)"), {"t": when})
    engine.dispose()
    upgraded = Store(store_url)
    assert upgraded.version() == schema.VERSION >= 3
    [row] = upgraded.outbox.rows()
    assert (row.status, row.owner, row.lease_until) == ("sending", None, None)
    assert upgraded.outbox.recover(when) == 1
    assert upgraded.outbox.rows()[0].status == "pending"
    upgraded.close()


def queued(store, *rules):
    now = datetime(2024, 7, 11, 21, 0, tzinfo=timezone.utc)
    store.outbox.add([{"rule_id": r, "session": date(2024, 7, 11), "channel": "console", "severity": "warning",
                       "payload": "{}", "chart": None} for r in rules], now)
    ids = {row.rule_id: row.id for row in store.outbox.rows()}
    return now, [ids[r] for r in rules]


def test_a_claim_takes_every_row_of_its_unit_or_none(store):
    now, (a, b) = queued(store, "a", "b")
    assert [r.id for r in store.outbox.claim([b], "one", now + timedelta(minutes=10), due_by=now)] == [b]
    assert store.outbox.claim([a, b], "two", now + timedelta(minutes=10), due_by=now) == []
    assert {r.rule_id: (r.status, r.owner) for r in store.outbox.rows()} == \
        {"a": ("pending", None), "b": ("sending", "one")}


def test_recovery_frees_only_claims_whose_lease_has_run_out(store):
    now, (a, b) = queued(store, "a", "b")
    store.outbox.claim([a], "short", now + timedelta(minutes=1))
    store.outbox.claim([b], "long", now + timedelta(minutes=10))
    assert store.outbox.recover(now + timedelta(minutes=5)) == 1
    assert {r.rule_id: (r.status, r.owner) for r in store.outbox.rows()} == \
        {"a": ("pending", None), "b": ("sending", "long")}


def test_a_result_from_a_process_whose_claim_was_taken_over_is_not_recorded_as_a_retry(store):
    now, (a,) = queued(store, "a")
    store.outbox.claim([a], "old", now + timedelta(minutes=1))
    store.outbox.recover(now + timedelta(minutes=2))
    store.outbox.claim([a], "new", now + timedelta(minutes=12))
    assert not store.outbox.retry(a, "old", "timed out", now + timedelta(minutes=3), failed=False)
    [row] = store.outbox.rows()
    assert (row.status, row.owner, row.attempts) == ("sending", "new", 0)


def test_a_failed_run_is_recorded_as_failed_and_not_counted_as_done(store):
    now = datetime(2024, 7, 11, 21, 0, tzinfo=timezone.utc)
    store.run_started(date(2024, 7, 10), now, False)
    store.run_finished(date(2024, 7, 10), now, "done")
    store.run_started(date(2024, 7, 11), now, False)
    store.run_finished(date(2024, 7, 11), now, "no data", status="failed")
    assert store.last_done_session() == date(2024, 7, 10)
    assert [(r.session, r.status) for r in store.runs_list(2)] == [(date(2024, 7, 11), "failed"),
                                                                   (date(2024, 7, 10), "done")]
