"""Mutes: a muted rule's firing is never queued, and the mute expires on the bot's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.clock import ET
from tests.apps import make_app
from tests.conftest import copy_config


@pytest.fixture
def config(tmp_path):
    return copy_config(tmp_path)


def test_a_mute_suppresses_the_next_alert_and_expires(tmp_path, config, data_dir):
    app, out = make_app(tmp_path, config, data_dir, datetime(2024, 7, 10, 21, 0, tzinfo=ET))
    until = app.mute("soft-cpi-rotation", timedelta(days=1))  # 2024-07-11 21:00 ET
    app.clock.set(datetime(2024, 7, 11, 16, 30, tzinfo=ET))
    for day in ("2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08", "2024-07-09", "2024-07-10", "2024-07-11"):
        app.run_session(day)
    assert "soft-cpi-rotation" not in out.getvalue()  # it fired on 07-11, muted
    app.clock.set(until + timedelta(minutes=1))
    assert app.store.mutes(app.clock.now()) == {}  # expired on the (simulated) clock
    app.run_session("2024-07-11")  # the muted firing was never queued: after expiry it is delivered, once
    assert out.getvalue().count("soft-cpi-rotation") == 1
