"""The daemon's instance lock: a daemon that loses it (its database connection dropped) takes it again and
resumes, or stands by when another instance holds it now, and says which in the log."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import ET
from bot.daemon.runner import Daemon
from tests.apps import make_app
from tests.conftest import copy_config


@pytest.fixture
def config(tmp_path):
    return copy_config(tmp_path)


class Relock:
    """An instance lock just lost (its connection dropped) that is free to take again, or taken by another."""

    def __init__(self, free: bool):
        self.free = free

    def acquire(self):
        return self.free

    def release(self):
        pass


@pytest.mark.parametrize("free, line, leads", [
    (True, "reconnected and resumed as the active instance", True),
    (False, "another instance holds it now: standing by", False),
], ids=["resumes", "stands by"])
def test_a_daemon_that_loses_its_lock_resumes_or_stands_by_and_says_which(tmp_path, config, data_dir, caplog,
                                                                          free, line, leads):
    """Against PostgreSQL's real lock (pg_terminate_backend): tests/test_ha_postgres.py."""
    app, _ = make_app(tmp_path, config, data_dir, datetime(2024, 7, 11, 21, 0, tzinfo=ET))
    daemon = Daemon(app, Relock(free))
    daemon.stop_event.set()  # stopped while standing by
    assert daemon.acquire(lost=True) is leads
    assert line in caplog.text
