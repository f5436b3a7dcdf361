"""Telegram commands through the Bot API stand-in: answered in allowed chats only."""

from __future__ import annotations

import html
import re
import time
from datetime import datetime

import pytest

from bot.app import App
from bot.clock import ET, SYSTEM, SimulatedClock
from bot.data.fetch import update
from bot.errors import StoreError, UsageError
from bot.settings.live import LiveConfig
from bot.settings.load import load_series
from bot.telegram.handlers import respond
from bot.telegram.poller import CommandPoller
from tests.apps import run_poller_until
from tests.conftest import ROOT, wait_for

NOW = datetime(2024, 7, 12, 9, 0, tzinfo=ET)


@pytest.fixture(scope="module")
def app(tmp_path_factory, data_dir):
    """The app the Telegram adapter talks to: the shipped rules, a store holding the shipped history,
    a clock stopped at NOW."""
    from bot.store import Store
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('commands') / 'c.db'}")
    update(store, load_series(ROOT / "config" / "series.yaml"), data_dir=str(data_dir), today=SYSTEM.today_et())
    config = LiveConfig(ROOT / "config" / "rules.yaml", ROOT / "config")
    return App(config, clock=SimulatedClock(NOW), store=store)


def test_help_lists_every_command(app):
    text = respond("/help", app).text
    for command in ("/status", "/rules", "/check", "/last", "/chart", "/mute", "/unmute"):
        assert command in text


def test_status_reports_freshness_per_series(app):
    text = respond("/status", app).text
    assert "IWM        latest 2026-06-12" in text and "outbox: 0 pending" in text


def test_rules_lists_ids_titles_and_last_firing(app):
    text = respond("/rules", app).text
    assert "soft-cpi-rotation [critical]" in text and "last fired 2024-07-11" in text


def test_check_evaluates_the_latest_session(app):
    assert respond("/check", app).text.startswith("Session Fri 2026-06-12")


def test_chart_answers_with_a_png(app):
    reply = respond("/chart IWM dgs10 3", app)
    assert reply.photo[:4] == b"\x89PNG" and len(reply.photo) < 200_000
    assert "IWM vs DGS10" in reply.text


def test_chart_of_an_unknown_series_suggests_one(app):
    assert "unknown series 'IWN'; did you mean 'IWM'?" in respond("/chart IWN", app).text


def test_mute_is_stored_and_unmute_removes_it(app):
    store = app.store
    assert "Muted small-cap-trap until Mon 2024-07-15" in respond("/mute small-cap-trap 3d", app).text
    assert "small-cap-trap" in store.mutes(NOW)
    assert "(muted until" in respond("/rules", app).text
    assert respond("/unmute small-cap-trap", app).text == "Unmuted small-cap-trap."
    assert store.mutes(NOW) == {}


def test_mute_survives_a_restart(app, tmp_path):
    from bot.store import Store
    store = app.store
    respond("/mute risk-off-pivot 2w", app)
    assert "risk-off-pivot" in Store(store.url).mutes(NOW)
    respond("/unmute risk-off-pivot", app)


def test_mute_refuses_an_unknown_rule_or_duration(app):
    assert "did you mean 'small-cap-trap'" in respond("/mute small-cap-trp 3d", app).text
    assert "not a duration" in respond("/mute small-cap-trap soon", app).text


def test_last_lists_recent_alerts(app):
    from bot.notify.alert import Alert
    from bot.notify.delivery import deliver, enqueue
    store, settings = app.store, app.loaded.settings
    alert = Alert("soft-cpi-rotation", datetime(2024, 7, 11).date(), "critical", "t", "CPI -0.04% m/m")
    enqueue(store, [(alert, ["console"])], settings, now=SYSTEM.now())
    deliver(store, settings)
    assert respond("/last", app).text == "2024-07-11 soft-cpi-rotation: CPI -0.04% m/m"


def test_unknown_command_suggests_one(app):
    assert "did you mean 'status'" in respond("/stauts", app).text


def test_the_poller_answers_an_allowed_chat_and_ignores_others(app, telegram, caplog):
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05)
    telegram.push_command(555, "/status")  # not on the allow-list
    telegram.push_command(1001, "/help")
    poller.start()
    try:
        assert wait_for(lambda: telegram.sent("sendMessage"))
        time.sleep(0.3)
    finally:
        poller.stop()
    replies = telegram.sent("sendMessage")
    assert [r.fields["chat_id"] for r in replies] == ["1001"]
    assert "/mute RULE DURATION" in replies[0].fields["text"]
    assert "ignored '/status' from chat 555: not in TELEGRAM_CHAT_IDS" in caplog.text


def test_the_poller_sends_charts_as_photos(app, telegram):
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05)
    telegram.push_command(1002, "/chart SPY 2")
    poller.start()
    try:
        assert wait_for(lambda: telegram.sent("sendPhoto"))
    finally:
        poller.stop()
    [photo] = telegram.sent("sendPhoto")
    assert photo.files["photo"][:4] == b"\x89PNG" and photo.fields["chat_id"] == "1002"


ERRORS = [  # what python-telegram-bot raises for each answer of the Bot API
    ("NetworkError", lambda t: t.fail("sendMessage", 500, "Internal Server Error")),
    ("RetryAfter", lambda t: t.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)),
    ("Forbidden", lambda t: t.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")),
    ("BadRequest", lambda t: t.fail("sendMessage", 400, "Bad Request: message is too long")),
    ("TimedOut", lambda t: t.delay("sendMessage", 3.0)),
    ("getUpdates NetworkError", lambda t: t.fail("getUpdates", 502, "Bad Gateway")),
    ("getUpdates RetryAfter", lambda t: t.fail("getUpdates", 429, "Too Many Requests: retry after 1",
                                               retry_after=1)),
]


@pytest.mark.parametrize("inject", [e[1] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_the_command_loop_survives_every_telegram_error_and_keeps_answering(app, telegram, inject, caplog):
    """One failed reply (or poll) loses that reply only: the loop backs off and answers the next command."""
    inject(telegram)
    telegram.push_command(1001, "/help")
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05, backoff=0.05, request_timeout=1.0)
    poller.start()
    try:
        assert wait_for(lambda: len(telegram.sent("sendMessage")) >= 1)  # the first reply (failing, or failed poll)
        polls = poller.polls
        telegram.push_command(1001, "/help")  # after the failure: still answered
        assert wait_for(lambda: len(telegram.sent("sendMessage")) >= 2, seconds=20)
        assert poller.polls > polls
    finally:
        telegram.release()
        poller.stop()
    assert poller.thread.is_alive() is False
    assert "command loop failed" not in caplog.text


def test_why_answers_with_the_explanation_of_the_rule_on_that_day(app):
    text = respond("/why small-cap-trap 2024-07-16", app).text
    assert " ".join(text.split()).startswith("small-cap-trap did not hold on 2024-07-16")
    assert "change(DGS10, 5)" in text and "-0.13" in text
    assert max(len(line) for line in text.splitlines()) <= 40  # typed or pressed, /why fits a phone
    assert "no rule 'small-cap-tarp'" in respond("/why small-cap-tarp", app).text
    assert "not a date" in respond("/why small-cap-trap yesterday", app).text


def test_mute_with_an_absurd_duration_answers_with_the_usage_line(app):
    for duration in ("99999999999w", "400d", "0d"):
        text = respond(f"/mute small-cap-trap {duration}", app).text
        assert "Usage: /mute RULE DURATION" in text, duration
    assert app.store.mutes(app.clock.now()) == {}


def alert_buttons(rule="soft-cpi-rotation"):
    from datetime import date
    from bot.notify.alert import Alert
    from bot.notify.button_codec import keyboard
    markup = keyboard(Alert(rule, date(2024, 7, 11), "critical", "t", "x"))
    return {b.text: b.callback_data for row in markup.inline_keyboard for b in row}


def test_a_mute_button_persists_the_mute_and_edits_the_message(app, telegram):
    data = next(v for k, v in alert_buttons().items() if "1 day" in k)
    telegram.push_callback(1001, data, message_id=7)
    assert run_poller_until(app, lambda: telegram.sent("editMessageReplyMarkup"))
    from datetime import date
    try:
        assert "soft-cpi-rotation" in app.store.mutes(app.clock.now())
        [answer] = telegram.sent("answerCallbackQuery")
        assert "muted until" in answer.fields["text"]
        before = len(app.store.outbox.rows(None))
        result = app.check(date(2024, 7, 11), send=True)  # the rule fires that day: the mute suppresses the alert
        assert [s.id for s in result.fired] == ["soft-cpi-rotation"]
        assert len(app.store.outbox.rows(None)) == before  # nothing queued for any channel
    finally:
        app.unmute("soft-cpi-rotation")


def test_a_why_button_answers_with_the_explanation(app, telegram):
    data = next(v for k, v in alert_buttons().items() if "Why" in k)
    telegram.push_callback(1002, data)
    assert run_poller_until(app, lambda: telegram.sent("sendMessage"))
    [reply] = telegram.sent("sendMessage")
    assert reply.fields["text"].startswith("soft-cpi-rotation fired on 2024-07-11")


def test_a_forged_button_is_refused_politely_and_changes_nothing(app, telegram):
    data = next(v for k, v in alert_buttons().items() if "1 week" in k)
    forged = data[:-1] + ("x" if data[-1] != "x" else "y")
    telegram.push_callback(1001, forged)
    telegram.push_callback(1001, "v1|m1w|20240711|deadbeef|soft-cpi-rotation")
    assert run_poller_until(app, lambda: len(telegram.sent("answerCallbackQuery")) >= 2)
    assert all("no longer valid" in a.fields["text"] for a in telegram.sent("answerCallbackQuery"))
    assert app.store.mutes(app.clock.now()) == {} and not telegram.sent("sendMessage")


def test_a_button_from_a_chat_not_on_the_allow_list_is_ignored(app, telegram, caplog):
    data = next(v for k, v in alert_buttons().items() if "1 day" in k)
    telegram.push_callback(555, data)
    telegram.push_command(1001, "/help")  # a marker: once answered, the button was seen too
    assert run_poller_until(app, lambda: telegram.sent("sendMessage"))
    assert not telegram.sent("answerCallbackQuery") and app.store.mutes(app.clock.now()) == {}
    assert "not in TELEGRAM_CHAT_IDS" in caplog.text


# -- odd updates, strangers and bugs never block the commands after them (issue 16) -----------------------

def odd_updates(telegram):
    """Updates no user typed as a command, each (kind, body); the first is a stranger's message of spaces."""
    now = int(time.time())

    def message(chat_id, chat_type="private", **fields):
        return {"message_id": 900, "date": now, "chat": {"id": chat_id, "type": chat_type},
                "from": {"id": abs(chat_id), "is_bot": False, "first_name": "U"}, **fields}
    return [
        ("message", message(555, text="   ")),  # a stranger's chat: only spaces
        ("message", message(555, text="")),  # a stranger's chat: empty text
        ("message", message(555, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                          "width": 1, "height": 1, "is_animated": False, "is_video": False})),
        ("message", message(1001, text="   ")),  # an allowed chat: only spaces
        ("message", message(1001, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                           "width": 1, "height": 1, "is_animated": False, "is_video": False})),
        ("edited_message", {**message(1001, text="/mute small-cap-trap 1d"), "edit_date": now}),
        ("edited_message", {**message(555, text="   "), "edit_date": now}),
        ("channel_post", {"message_id": 901, "date": now, "text": "/mute small-cap-trap 1d",
                          "chat": {"id": -100555, "type": "channel", "title": "c"}}),
        ("callback_query", {"id": "cqa", "chat_instance": "ci", "from": {"id": 555, "is_bot": False,
                                                                         "first_name": "U"},
                            "message": message(555, text="alert")}),  # a stranger's button with no data
        ("callback_query", {"id": "cqb", "chat_instance": "ci", "from": {"id": 1001, "is_bot": False,
                                                                         "first_name": "U"},
                            "message": message(1001, text="alert")}),  # an allowed chat's button with no data
        ("callback_query", {"id": "cqc", "chat_instance": "ci", "data": "bug",  # its handler raises
                            "from": {"id": 1001, "is_bot": False, "first_name": "U"},
                            "message": message(1001, text="alert")}),
        ("callback_query", {"id": "cqd", "chat_instance": "ci", "data": "x",  # no message: no chat
                            "from": {"id": 555, "is_bot": False, "first_name": "U"}}),
        ("message", {"message_id": 902, "date": now, "chat": 555, "text": "/help"}),  # python-telegram-bot
        ("callback_query", {"id": "cqe", "data": "x"}),  # cannot read these two: the batch is read raw
        ("my_chat_member", {"chat": {"id": 555, "type": "private"}, "from": {"id": 555, "is_bot": False,
                                                                           "first_name": "U"}, "date": now,
                            "old_chat_member": {"status": "member", "user": {"id": 4242, "is_bot": True,
                                                                             "first_name": "B"}},
                            "new_chat_member": {"status": "kicked", "until_date": 0,
                                                "user": {"id": 4242, "is_bot": True, "first_name": "B"}}}),
    ]


def test_odd_updates_strangers_and_a_bug_never_block_the_commands_after_them(app, telegram, monkeypatch, caplog):
    """A batch with the bad updates first and /help and /status after: each command answered exactly once,
    nothing else answered or changed, and getUpdates never asks again for an update already handled."""
    import bot.telegram.poller as poller_module
    real = poller_module.answer_button

    async def buggy(bot, query, app):
        if query.data == "bug":
            raise RuntimeError("a bug in a button handler")
        await real(bot, query, app)
    monkeypatch.setattr(poller_module, "answer_button", buggy)
    for kind, body in odd_updates(telegram):
        telegram.push_update(kind, body)
    telegram.push_command(1001, "/help")
    telegram.push_command(1001, "/status")
    last = len(telegram.updates)
    poller = CommandPoller(app, poll_timeout=0, idle_sleep=0.05, backoff=0.05)
    poller.start()
    try:
        assert wait_for(lambda: len(telegram.sent("sendMessage")) >= 2)
        polls = poller.polls
        assert wait_for(lambda: poller.polls >= polls + 5)  # a few more polls: time to answer anything twice
    finally:
        poller.stop()
    texts = [m.fields["text"] for m in telegram.sent("sendMessage")]
    assert len(texts) == 2 and texts[0].startswith("Closebell commands:") and "outbox:" in texts[1]
    assert {m.fields["chat_id"] for m in telegram.sent("sendMessage")} == {"1001"}
    assert app.store.mutes(app.clock.now()) == {}  # the edited message and the channel post did nothing
    offsets = telegram.offsets()  # None until the first batch is handled, then never again, never going back
    asked = [o for o in offsets if o is not None]
    assert None not in offsets[offsets.index(asked[0]):] and asked == sorted(asked) and asked[-1] == last + 1
    assert "a bug in a button handler" in caplog.text and "command loop failed" not in caplog.text


# -- commands addressed to another bot in a group --------------------------------------------------------

ADDRESSED = [  # (message, answered by this bot: closebell_test_bot, as getMe says)
    ("/mute@other_bot small-cap-trap 1d", False),
    ("/help@other_bot", False),
    ("/help@closebell_test_bot", True),
    ("/help@Closebell_Test_Bot", True),
    ("/help", True),
]


@pytest.mark.parametrize("text,answered", ADDRESSED, ids=[a[0] for a in ADDRESSED])
def test_a_command_for_another_bot_is_left_to_it(app, text, answered):
    assert (respond(text, app, "closebell_test_bot") is not None) is answered


def test_in_a_group_only_commands_for_this_bot_are_executed(app, telegram, monkeypatch):
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001,-100500")
    telegram.push_command(-100500, "/mute@other_bot small-cap-trap 1d", chat_type="supergroup")
    telegram.push_command(-100500, "/mute@closebell_test_bot soft-cpi-rotation 1d", chat_type="supergroup")
    try:
        assert run_poller_until(app, lambda: telegram.sent("sendMessage"))
        time.sleep(0.3)
        assert set(app.store.mutes(app.clock.now())) == {"soft-cpi-rotation"}
        [reply] = telegram.sent("sendMessage")
        assert reply.fields["text"].startswith("Muted soft-cpi-rotation until")
    finally:
        app.unmute("soft-cpi-rotation")
        app.unmute("small-cap-trap")


# -- /why with a date it cannot use ----------------------------------------------------------------------

WHY_DATES = [  # (date as typed, the one line answered)
    ("0001-01-01", "0001-01-01 is out of range; write a date between 1900-01-01 and 2199-12-31"),
    ("9999-12-31", "9999-12-31 is out of range; write a date between 1900-01-01 and 2199-12-31"),
    ("1899-12-31", "1899-12-31 is out of range; write a date between 1900-01-01 and 2199-12-31"),
    ("2200-01-01", "2200-01-01 is out of range; write a date between 1900-01-01 and 2199-12-31"),
    ("2024-02-30", "'2024-02-30' is not a date; write YYYY-MM-DD, e.g. /why small-cap-trap 2024-07-16"),
    ("99999-01-01", "'99999-01-01' is not a date; write YYYY-MM-DD, e.g. /why small-cap-trap 2024-07-16"),
    ("2024-07-16x", "'2024-07-16x' is not a date; write YYYY-MM-DD, e.g. /why small-cap-trap 2024-07-16"),
]


@pytest.mark.parametrize("day,answer", WHY_DATES, ids=[w[0] for w in WHY_DATES])
def test_why_with_a_date_out_of_range_or_garbled_answers_one_line(app, day, answer, caplog):
    assert respond(f"/why small-cap-trap {day}", app).text == answer
    assert "Traceback" not in caplog.text


# -- the command table is the source of truth: /help and the "/" menu come from it ------------------------

def test_every_command_in_the_table_has_usage_and_description_is_in_help_and_answers(app, telegram):
    from bot.telegram.handlers import COMMANDS, help_text
    help_lines = help_text().splitlines()
    for name, command in COMMANDS.items():
        assert re.fullmatch(r"[a-z0-9_]{1,32}", name) and command.name == name
        assert command.usage.startswith(f"/{name}") and command.description
        assert "\n" not in command.description and len(command.description) <= 256
        assert (f"{command.usage}: {command.description}" in help_lines) is command.menu, name
        telegram.push_command(1001, f"/{name}")
    answered = lambda: len(telegram.messages()) >= len(COMMANDS)  # noqa: E731
    assert run_poller_until(app, answered)
    time.sleep(0.3)
    assert len(telegram.messages()) == len(COMMANDS)  # one answer each, none twice


def test_the_command_menu_is_registered_at_start_only_when_it_changed(app, telegram):
    from bot.telegram.handlers import COMMANDS
    assert run_poller_until(app, lambda: telegram.sent("setMyCommands"))
    [registered] = telegram.sent("setMyCommands")
    menu = [(c["command"], c["description"]) for c in telegram.commands]
    assert menu == [(c.name, c.description) for c in COMMANDS.values() if c.menu] and "start" not in dict(menu)
    assert run_poller_until(app, lambda: len(telegram.sent("getMyCommands")) >= 2)
    assert len(telegram.sent("setMyCommands")) == 1  # the second start found the menu as it should be


# -- one error policy for commands and buttons ------------------------------------------------------------

def _raise(exc):
    def explain(*args, **kwargs):
        raise exc
    return explain


POLICY = [  # (what app.explain raises, the command's answer, the button's answer, logged with a traceback)
    (UsageError("no rule 'x'; did you mean 'y'?"), "no rule 'x'; did you mean 'y'?",
     "no rule 'x'; did you mean 'y'?", False),
    (StoreError("the store is locked"), "/why could not answer: the store is locked",
     "this button could not answer: the store is locked", False),
    (RuntimeError("a bug"), "/why: something went wrong, logged.", "this button: something went wrong, logged.",
     True),
]


@pytest.mark.parametrize("exc,command_answer,button_answer,traceback", POLICY,
                         ids=[type(p[0]).__name__ for p in POLICY])
def test_commands_and_buttons_share_one_error_policy(app, telegram, monkeypatch, caplog, exc, command_answer,
                                                     button_answer, traceback):
    monkeypatch.setattr(app, "explain", _raise(exc))
    telegram.push_command(1001, "/why small-cap-trap")
    telegram.push_callback(1001, next(v for k, v in alert_buttons().items() if "Why" in k))
    telegram.push_command(1001, "/help")  # after both: the loop went on
    assert run_poller_until(app, lambda: len(telegram.sent("sendMessage")) >= 2)
    assert [html.unescape(m.fields["text"]) for m in telegram.sent("sendMessage")][0] == command_answer
    [answer] = telegram.sent("answerCallbackQuery")
    assert answer.fields["text"] == button_answer
    assert ("Traceback" in caplog.text) is traceback and "command loop failed" not in caplog.text


# -- the Why? button fits a phone --------------------------------------------------------------------------

WHY_DAYS = ["2024-07-16", "2024-07-11", "2024-07-18", "2020-03-16", "2008-10-10", "2003-01-02", "2026-06-12"]


@pytest.mark.parametrize("day", WHY_DAYS)
def test_the_why_answer_fits_40_columns_one_sub_condition_a_line(app, day):
    from datetime import date
    from bot.render.phone import phone_lines
    for rule in app.loaded.rules:
        result = app.explain(rule.id, date.fromisoformat(day))
        lines = phone_lines(result)
        assert max(len(line) for line in lines) <= 40, (rule.id, [line for line in lines if len(line) > 40])
        text = "\n".join(lines)

        def compares(node):
            return ([node] if node.kind == "compare" else []) + [c for ch in node.children for c in compares(ch)]
        for node in compares(result.condition):
            if node.value is not None:
                assert f"{node.value:.2f} vs {node.threshold:.2f}" in text, (rule.id, node.expr)


def test_the_why_button_answers_in_lines_a_phone_shows_whole(app, telegram):
    from datetime import date
    from bot.notify.alert import Alert
    from bot.notify.button_codec import keyboard
    markup = keyboard(Alert("small-cap-trap", date(2024, 7, 16), "warning", "t", "x"))
    data = next(b.callback_data for row in markup.inline_keyboard for b in row if "Why" in b.text)
    telegram.push_callback(1001, data)
    assert run_poller_until(app, lambda: telegram.sent("sendMessage"))
    [reply] = telegram.sent("sendMessage")
    lines = html.unescape(reply.fields["text"]).splitlines()
    assert lines[:2] == ["small-cap-trap did not hold on", "  2024-07-16"]
    assert "  ✗ change(DGS10, 5) >= rise" in lines and "    -0.13 vs 0.00, needs +0.13 more" in lines
    assert max(len(line) for line in lines) <= 40
