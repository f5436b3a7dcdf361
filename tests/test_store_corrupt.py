"""A store that cannot be used says so in one line and the CLI exits 4: junk over the SQLite file, a file
damaged after it was opened, a PostgreSQL server that is not there (named by host, never by password)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.errors import StoreError
from bot.store import Store
from tests.conftest import ROOT, free_port, subprocess_env

JUNK = b"Closebell was never here. " * 400


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env=subprocess_env(**env))


@pytest.mark.parametrize("command", [["status"], ["outbox"], ["check"], ["run", "--once"]])
def test_junk_over_the_sqlite_file_is_one_line_and_exit_4(tmp_path, command):
    home = tmp_path / "home"
    home.mkdir()
    database = home / "closebell.db"
    database.write_bytes(JUNK)
    proc = cli(*command, CLOSEBELL_HOME=home)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: the store at {database} is not a SQLite database (or is damaged): file is not a database"]


def test_a_file_damaged_after_opening_is_a_store_error_at_its_next_use(tmp_path):
    path = tmp_path / "closebell.db"
    store = Store(f"sqlite:///{path}")
    store.engine.dispose()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(JUNK)
    with pytest.raises(StoreError, match=rf"^the store at {path} is not a SQLite database \(or is damaged\): "):
        store.outbox.counts()


def test_an_unreachable_postgresql_names_the_host_and_never_the_password():
    port = free_port()  # nothing listens there
    url = f"postgresql://closebell:pa55-w0rd-secret@127.0.0.1:{port}/closebell"
    with pytest.raises(StoreError) as caught:
        Store(url.replace("postgresql://", "postgresql+psycopg://"))
    message = str(caught.value)
    assert message.startswith(f"cannot reach the PostgreSQL store at closebell@127.0.0.1:{port}/closebell: ")
    assert "pa55-w0rd-secret" not in message

    proc = cli("status", DATABASE_URL=url)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and "pa55-w0rd-secret" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in proc.stderr
