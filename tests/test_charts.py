"""Alert charts (bot.notify.charts): a small PNG legible on a phone, and an alert whose chart cannot be
drawn still goes, as text."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import ET
from tests.apps import make_app
from tests.conftest import copy_config


@pytest.fixture
def config(tmp_path):
    return copy_config(tmp_path)


def test_an_alert_chart_is_a_small_png_legible_on_a_phone(data_dir):
    from bot.app.evaluation import prepare
    from bot.settings.rules_file import load_rules
    from bot.notify.charts import alert_chart
    from bot.settings.load import load_series
    from tests.conftest import ROOT
    series = load_series(ROOT / "config" / "series.yaml")
    rules = load_rules(ROOT / "config" / "rules.yaml", series)
    prepared = prepare(rules, series, data_dir=str(data_dir))
    png = alert_chart(prepared.frame, rules[0], "2024-07-11", {n: s.units for n, s in series.items()})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000
    width = int.from_bytes(png[16:20], "big")
    assert 600 <= width <= 1200


def test_an_alert_whose_chart_cannot_be_drawn_goes_without_it(tmp_path, config, data_dir, telegram, monkeypatch):
    import bot.notify.charts as charts
    (config / "settings.yaml").write_text("notify:\n  charts: true\n  telegram_pace_seconds: 0\n")

    def broken(*_args, **_kwargs):
        raise RuntimeError("no fonts on this host")
    monkeypatch.setattr(charts, "alert_chart", broken)
    app, _ = make_app(tmp_path, config, data_dir, datetime(2024, 7, 11, 21, 0, tzinfo=ET))
    app.notifiers = None
    app.run_session("2024-07-11")
    sent = telegram.messages()
    assert sent and all(call.method == "sendMessage" for call in sent)  # text, no photo
    assert any("Soft CPI print" in call.fields["text"] for call in sent)
