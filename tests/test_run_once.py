"""`closebell run --once`: one session in a child process, offline; a session that evaluates none of its
rules is a failed run (exit 3, a fail ping, `status` says so) and is run again next time."""

from __future__ import annotations

from tests.apps import closebell, offline_config
from tests.conftest import subprocess_env


def test_run_once_offline_with_a_stale_store_is_a_failed_run_exit_3_and_a_fail_ping(tmp_path, data_dir, httpserver):
    """The shipped history ends in June 2026: every session after it finds the store stale. Evaluating
    none of the rules it should have is a failed run, whatever else went right."""
    httpserver.expect_request("/ping/abc/fail", method="POST").respond_with_data("OK")
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=offline_config(tmp_path, data_dir),
                         HEARTBEAT_URL=httpserver.url_for("/ping/abc"))
    proc = closebell("run", "--once", env=env)
    assert proc.returncode == 3, proc.stderr
    assert "closebell " in proc.stderr and "store: " in proc.stderr and "Traceback" not in proc.stderr
    assert ": failed: could not evaluate small-cap-trap, soft-cpi-rotation" in proc.stderr
    assert "IWM (latest 2026-06-12; no value yet from csv)" in proc.stderr
    status = closebell("status", env=env)
    first = status.stdout.splitlines()[0]
    assert first.startswith("last run: ") and " failed" in first, status.stdout
    fail = [r for r, _ in httpserver.log if r.path == "/ping/abc/fail"]
    assert len(fail) == 1 and b"could not evaluate" in fail[0].get_data()
    again = closebell("run", "--once", env=env)  # a failed session is run again, and fails again: still exit 3
    assert again.returncode == 3 and ": failed: " in again.stderr
