"""Which alerts go as one message (a notifier's units, bot.notify.base): a burst to one chat is one grouped
message, most severe first; notices never are; email sends the whole batch, the console one line each."""

from __future__ import annotations

from datetime import date

from bot.notify import email as email_notifier
from bot.notify import telegram as telegram_notifier
from bot.notify.alert import Alert
from bot.settings.models import Settings
from tests.notifying import PNG, SETTINGS, burst, keyboard_of, send


def test_more_than_three_alerts_to_one_chat_go_as_one_grouped_message_most_severe_first(telegram):
    alerts = burst(4)
    results = send(telegram_notifier.Notifier(SETTINGS), "1001", alerts, {0: PNG, 2: PNG + b"critical"})
    assert all(r.ok for r in results)
    [call] = telegram.messages()
    assert call.method == "sendPhoto" and call.files["photo"] == PNG + b"critical"  # the most severe's chart
    lines = call.fields["caption"].split("\n")
    assert lines[0].endswith("<b>4 alerts</b> · <i>Thu 2024-07-11</i>")
    assert [line.rsplit(" · ", 1)[1] for line in lines[1:]] == ["rule-2", "rule-0", "rule-3", "rule-1"]
    assert call.fields["disable_notification"] == "false"  # a critical alert is in it
    assert [row[0]["text"] for row in keyboard_of(call)] == ["🔕 rule-2 1d", "🔕 rule-0 1d", "🔕 rule-3 1d",
                                                              "🔕 rule-1 1d"]


def test_three_alerts_still_go_one_by_one(telegram):
    send(telegram_notifier.Notifier(SETTINGS), "1001", burst(3))
    assert len(telegram.sent("sendMessage")) == 3


def test_grouping_false_sends_each_alert_on_its_own(telegram):
    settings = Settings(notify={"telegram_pace_seconds": 0, "grouping": False})
    send(telegram_notifier.Notifier(settings), "1001", burst(5))
    assert len(telegram.sent("sendMessage")) == 5


def test_group_above_sets_the_threshold_and_notices_stay_on_their_own(telegram):
    settings = Settings(notify={"telegram_pace_seconds": 0, "group_above": 1})
    notice = Alert(rule_id="notice:x", session=date(2024, 7, 11), severity="warning", title="Closebell notice",
                   text="late data", kind="notice")
    notifier = telegram_notifier.Notifier(settings)
    alerts = burst(2) + [notice]
    assert notifier.units(alerts) == [[0, 1], [2]]
    send(notifier, "1001", alerts)
    grouped, alone = telegram.sent("sendMessage")
    assert "<b>2 alerts</b>" in grouped.fields["text"] and "late data" in alone.fields["text"]


def test_units_console_one_each_email_the_whole_batch():
    from bot.notify import console
    alerts = burst(5)
    assert console.Notifier(SETTINGS).units(alerts) == [[0], [1], [2], [3], [4]]
    assert email_notifier.Notifier(SETTINGS).units(alerts) == [[0, 1, 2, 3, 4]]
    assert telegram_notifier.Notifier(SETTINGS).units(alerts[:3]) == [[0], [1], [2]]
