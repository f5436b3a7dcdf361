"""Running it for real: the Procfile under a real Procfile runner, the systemd unit under systemd's verifier."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, subprocess_env
from tests.apps import offline_config

HONCHO = Path(sys.executable).parent / "honcho"


def test_the_procfile_passes_honcho_check():
    proc = subprocess.run([str(HONCHO), "-f", str(ROOT / "Procfile"), "check"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "worker" in proc.stderr + proc.stdout


def test_two_procfile_workers_on_a_managed_postgres_url_one_runs_one_stands_by(tmp_path, data_dir, pg_url):
    """As a platform runs it: `honcho start` with two workers, DATABASE_URL in the postgres:// spelling such
    platforms give, the configuration from the repository's layout plus the environment."""
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=offline_config(tmp_path, data_dir),
                         DATABASE_URL=pg_url.replace("postgresql://", "postgres://", 1),
                         PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    (tmp_path / "empty.env").write_text("")
    proc = subprocess.Popen([str(HONCHO), "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "-e",
                             str(tmp_path / "empty.env"), "start", "-c", "worker=2"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            text = "".join(lines)
            if "running; next job for" in text and "standing by" in text:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)  # honcho passes it on to both workers
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
    text = "".join(lines)
    running = [line for line in lines if "running; next job for" in line]
    standing = [line for line in lines if "standing by" in line]
    assert len(running) == 1 and len(standing) >= 1, text
    assert running[0].split()[1] != standing[0].split()[1]  # worker.1 and worker.2: one each
    assert "store: postgres@127.0.0.1:5432/" in text and "Traceback" not in text  # the database, no password


def test_the_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here (systemd hosts only)")
    # The unit names /opt/closebell and /etc/closebell.env; verify checks that ExecStart is executable, so the
    # same unit is verified with those paths under tmp_path.
    opt = tmp_path / "opt" / "closebell"
    (opt / ".venv" / "bin").mkdir(parents=True)
    command = opt / ".venv" / "bin" / "closebell"
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    text = (ROOT / "deploy" / "closebell.service").read_text()
    assert "Restart=always" in text and "EnvironmentFile=/etc/closebell.env" in text
    unit = tmp_path / "closebell.service"
    unit.write_text(text.replace("/opt/closebell", str(opt)).replace("/etc/closebell.env", str(tmp_path / "c.env")))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr
