"""Charts only for what is sent: a chart is drawn for each alert that goes out alone and for each grouped
message's lead, never for an alert whose chart no message carries.

Drawing a chart costs ~0.1 s; 300 alerts firing at once once drew 300 charts (29 s) for one grouped
Telegram message that carried one. Each row queues alerts with a renderer that counts what it draws, delivers
them through the real notifiers (the Telegram Bot API stand-in, a real SMTP server on 127.0.0.1), and names the
charts drawn and the charts that arrived. Then the same through `check --send` with the real renderer.

Alerts are a00..a19 (warning unless a row says otherwise); a chart's bytes end with its rule id, so each
photo names the alert it belongs to.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.clock import SimulatedClock
from bot.notify import quiet
from bot.notify.alert import Alert
from bot.notify.delivery import deliver, enqueue
from bot.settings.models import Settings
from tests.conftest import ROOT

BERLIN = ZoneInfo("Europe/Berlin")
PNG = b"\x89PNG\r\n\x1a\n"
EVENING = datetime(2024, 7, 11, 22, 30, tzinfo=BERLIN).astimezone(timezone.utc)  # 16:30 ET
MORNING = datetime(2024, 7, 12, 7, 0, tzinfo=BERLIN).astimezone(timezone.utc)  # a quiet-hours window ends

# (what, alerts: count and the critical ones, notify settings, channels, charts that cannot be drawn,
#  charts drawn, photos in the evening, photos in the morning; a photo is "chat:rule", an email image "email:rule")
ROWS = [
    ("20 alerts grouped into one message: one chart, the most severe's",
     (20, {"a07"}), {}, ["telegram"], set(), ["a07"], ["1001:a07"], []),
    ("20 alerts with grouping off: each alone, each with its chart",
     (20, {"a07"}), {"grouping": False}, ["telegram"], set(), [f"a{i:02d}" for i in range(20)],
     [f"1001:a{i:02d}" for i in range(20)], []),
    ("3 alerts, not above group_above: each alone, each with its chart",
     (3, set()), {}, ["telegram"], set(), ["a00", "a01", "a02"], ["1001:a00", "1001:a01", "1001:a02"], []),
    ("the first alert of the evening, alone: its chart",
     (1, set()), {}, ["telegram"], set(), ["a00"], ["1001:a00"], []),
    ("20 alerts to two chats: the chart drawn once, sent to each",
     (20, {"a07"}), {}, ["telegram", "two chats"], set(), ["a07"], ["1001:a07", "1002:a07"], []),
    ("charts off: none drawn",
     (20, {"a07"}), {"charts": False}, ["telegram"], set(), [], [], []),
    ("the lead's chart cannot be drawn: the next most severe carries one",
     (20, {"a07"}), {}, ["telegram"], {"a07"}, ["a07", "a00"], ["1001:a00"], []),
    ("quiet hours held: two criticals ring now, each alone; 18 warnings come at 07:00 as one message",
     (20, {"a03", "a07"}), {"quiet_hours": "22:00-07:00", "quiet_hours_mode": "hold"}, ["telegram"], set(),
     ["a03", "a07", "a00"], ["1001:a03", "1001:a07"], ["1001:a00"]),
    ("an email of 20 alerts: one summary with the most severe's chart, not 20 inline",
     (20, {"a07"}), {}, ["email"], set(), ["a07"], ["email:a07"], []),
    ("an email of 3 alerts: every chart inline",
     (3, set()), {}, ["email"], set(), ["a00", "a01", "a02"], ["email:a00", "email:a01", "email:a02"], []),
]


def alerts(count: int, critical: set[str]) -> list[Alert]:
    return [Alert(rule_id=f"a{i:02d}", session=date(2024, 7, 11),
                  severity="critical" if f"a{i:02d}" in critical else "warning",
                  title=f"Alert a{i:02d}", text=f"IWM +{i}%") for i in range(count)]


def arrived(telegram, smtp) -> list[str]:
    photos = [f"{c.fields['chat_id']}:{c.files['photo'][len(PNG):].decode()}" for c in telegram.sent("sendPhoto")]
    images = [f"email:{part.get_content()[len(PNG):].decode()}" for message in smtp.messages()
              for part in message.walk() if part.get_content_type() == "image/png"]
    return sorted(photos + images)


@pytest.mark.parametrize("what,batch,notify,channels,broken,drawn,evening,morning", ROWS, ids=[r[0] for r in ROWS])
def test_only_the_charts_that_are_sent_are_drawn(what, batch, notify, channels, broken, drawn, evening, morning,
                                                 telegram, smtp, tmp_path, monkeypatch):
    from bot.store import Store
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001,1002" if "two chats" in channels else "1001")
    settings = Settings(timezone="Europe/Berlin", notify={"telegram_pace_seconds": 0, **notify})
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    calls: list[str] = []

    def render(alert):
        calls.append(alert.rule_id)
        return None if alert.rule_id in broken else PNG + alert.rule_id.encode()

    clock = SimulatedClock(EVENING)
    routes = [c for c in channels if c != "two chats"]
    enqueue(store, [(a, routes) for a in alerts(*batch)], settings, render, now=clock.now())
    first = deliver(store, settings, clock=clock, hold_until=quiet.hold_until)
    assert sorted(calls) == sorted(drawn), what
    assert arrived(telegram, smtp) == sorted(evening), what
    clock.set(MORNING)
    later = deliver(store, settings, clock=clock, hold_until=quiet.hold_until)
    assert arrived(telegram, smtp) == sorted(evening + morning), what
    assert not first.failed and not later.failed
    store.close()


@pytest.mark.parametrize("grouping,drawn,photos", [
    ("true", 1, 2),    # one grouped message to each of the two chats, carrying the one chart drawn
    ("false", 20, 40),  # each alert alone to each chat, each with its chart
])
def test_check_send_draws_one_chart_for_a_grouped_message(grouping, drawn, photos, telegram, tmp_path, data_dir,
                                                           monkeypatch):
    """20 rules fire on 2024-07-11 (IWM +3.6%, thresholds 2 to 2.95); `check --send` with the real renderer (matplotlib)."""
    from bot.cli import main
    from bot.notify import charts
    config = tmp_path / "cfg"
    config.mkdir()
    shutil.copy(ROOT / "config" / "series.yaml", config / "series.yaml")
    (config / "settings.yaml").write_text(f"notify:\n  default: [telegram]\n  telegram_pace_seconds: 0\n"
                                          f"  grouping: {grouping}\n")
    rules = "".join(f"  - id: up-{k}\n    when: pct_change(IWM, 1) >= {2 + k / 20:g}\n    cooldown: 0\n"
                    f"    chart: [IWM, SPY, DGS10]\n" for k in range(20))
    (config / "rules.yaml").write_text("rules:\n" + rules)
    monkeypatch.setenv("CLOSEBELL_CONFIG", str(config))
    real = charts.alert_chart
    counted: list[str] = []

    def counting(frame, rule, session, units, **kw):
        counted.append(rule.id)
        return real(frame, rule, session, units, **kw)
    monkeypatch.setattr(charts, "alert_chart", counting)
    assert main(["check", "--data-dir", str(data_dir), "--date", "2024-07-11", "--send"]) == 0
    assert len(counted) == drawn
    sent = telegram.sent("sendPhoto")
    assert len(sent) == photos and all(p.files["photo"][:8] == PNG for p in sent)
