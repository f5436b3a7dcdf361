"""Tuning a rule from the phone, end to end: the store (SQLite and PostgreSQL), the preview's evidence, the
rules in force in every verb, the file winning, `tune --export` keeping the file's comments, and /tune through
the Telegram Bot API stand-in with signed Apply / Cancel / Undo buttons."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta

import pytest

from bot.app import App
from bot.clock import ET, SimulatedClock
from bot.settings.live import LiveConfig
from bot.render.tune import preview_lines
from bot.store import Store
from tests.apps import run_poller_until
from tests.conftest import ROOT, copy_config

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=ET)
WHO = "telegram:1001"


@pytest.fixture
def config(tmp_path):
    path = copy_config(tmp_path)  # admin notices go to the console
    shutil.copy(ROOT / "config" / "rules.test.yaml", path / "rules.test.yaml")
    return path


def make_app(config, store_url, data_dir, clock=None):
    live = LiveConfig(config / "rules.yaml", config)
    return App(live, clock=clock or SimulatedClock(NOW), store=Store(store_url), data_dir=str(data_dir))


@pytest.fixture
def app(config, store_url, data_dir):
    app = make_app(config, store_url, data_dir)
    yield app
    app.close()


# -- the store -----------------------------------------------------------------------------------------

def test_an_override_its_history_and_a_preview_are_kept_in_the_store(store):
    at = NOW
    store.overrides.set("small-cap-trap", "lead", 6, 5, 5, WHO, at)
    store.overrides.set("small-cap-trap", "lead", 7, 5, 6, WHO, at + timedelta(minutes=1))  # replaces it
    [row] = store.overrides.current()
    assert (row.rule_id, row.param, row.value, row.file_value, row.previous, row.who) == \
        ("small-cap-trap", "lead", 7, 5, 6, WHO)
    assert row.at == at + timedelta(minutes=1)
    assert [r.param for r in store.overrides.retire("reset", "small-cap-trap", None, {"lead": 5}, WHO, at)] == ["lead"]
    assert store.overrides.retire("reset", "small-cap-trap", None, {"lead": 5}, WHO, at) == []  # recorded once
    assert store.overrides.current() == []
    assert [(e.kind, e.previous, e.value) for e in store.overrides.history()] == \
        [("applied", 5, 6), ("applied", 6, 7), ("reset", 7, 5)]
    pid = store.overrides.preview_add("small-cap-trap", "lead", 6, "", WHO, at)
    assert store.overrides.preview(pid).state == "open"
    assert store.overrides.preview_close(pid, "applied") and not store.overrides.preview_close(pid, "applied")


# -- the preview ------------------------------------------------------------------------------------------

def sweep_figures(app, spec):
    return [row.figures for row in app.sweep("small-cap-trap", [spec])]


def test_the_preview_shows_exactly_what_sweep_shows(app):
    preview = app.tune_preview("small-cap-trap", "lead", "6")
    before, after = sweep_figures(app, "lead=5,6")
    assert (preview.before, preview.after) == (before, after)
    text = "\n".join(preview_lines(preview))
    assert f"firings a year: {before.per_year:.2f} → {after.per_year:.2f} ({before.firings} → {after.firings}" \
           in text
    assert "last firings after:  2020-10-08, 2021-01-14, 2024-07-18" in text
    assert "golden tests" in text and "all 22 still pass" in text
    assert app.tune_list() == []  # a preview changes nothing


def test_a_preview_names_the_golden_test_a_value_breaks_by_its_line(app):
    preview = app.tune_preview("small-cap-trap", "lead", 9)
    assert preview.breaks
    [broken] = preview.broken
    assert broken.startswith(f"{app.config.config_dir / 'rules.test.yaml'}:21:5: small-cap-trap: expected a "
                             "firing in 2024-07-15..2024-07-19, got none")


@pytest.mark.parametrize("name, value, reason", [
    ("leed", "6", "has no parameter 'leed'; did you mean 'lead'?"),
    ("lead", "six", "'six' is not a number"),
    ("lead", "nan", "not a finite number"),
])
def test_a_value_the_rule_cannot_use_is_refused_with_the_reason(app, name, value, reason):
    from bot.errors import UsageError
    with pytest.raises(UsageError, match=reason):
        app.tune_preview("small-cap-trap", name, value)
    with pytest.raises(UsageError, match=reason):
        app.tune_apply("small-cap-trap", name, value, WHO)
    assert app.tune_list() == []


# -- the rules in force -------------------------------------------------------------------------------------

def test_apply_changes_what_check_and_explain_use_and_survives_a_restart(app, config, store_url, data_dir):
    day = date(2024, 11, 6)  # small-cap-trap fires with lead 5; IWM was about 5.7 points ahead of SPY
    assert [s.id for s in app.check(day).fired] == ["small-cap-trap"]
    change = app.tune_apply("small-cap-trap", "lead", "6", WHO)
    assert (change.old, change.new, change.file_value) == (5, 6, 5)
    assert [s.id for s in app.check(day).fired] == []
    assert "runs with an override: lead 6 (file: 5)" in app.explain("small-cap-trap", day).note
    restarted = make_app(config, store_url, data_dir)
    try:
        assert [s.id for s in restarted.check(day).fired] == []
        assert restarted.rule("small-cap-trap").params["lead"] == 6
        [overview] = [r for r in restarted.rules_overview() if r.id == "small-cap-trap"]
        assert overview.tuned == "runs with an override: lead 6 (file: 5)"
        assert restarted.status().overrides == {"small-cap-trap": "runs with an override: lead 6 (file: 5)"}
        assert "small-cap-trap" in restarted.backtest().overrides
    finally:
        restarted.close()
    [reset] = app.tune_reset("small-cap-trap", None, WHO)
    assert (reset.old, reset.new) == (6, 5)
    assert [s.id for s in app.check(day).fired] == ["small-cap-trap"]


def test_an_alert_of_a_tuned_rule_says_so(app):
    app.tune_apply("small-cap-trap", "rise", "-0.05", WHO)
    app.check(date(2024, 7, 18), send=True)
    [row] = [r for r in app.store.outbox.rows(None) if r.rule_id == "small-cap-trap"]
    assert "(tuned from the phone: runs with an override: rise -0.05 (file: 0))" in json.loads(row.payload)["text"]


def test_when_the_file_changes_a_tuned_parameter_the_file_wins_and_the_admin_hears_it_once(app, config):
    app.tune_apply("small-cap-trap", "lead", "6", WHO)
    rules = config / "rules.yaml"
    rules.write_text(rules.read_text().replace("params: {lead: 5, rise: 0}", "params: {lead: 7, rise: 0}"))
    assert app.rule("small-cap-trap").params["lead"] == 7
    assert app.tune_list() == []
    assert [e.kind for e in app.tune_history()] == ["applied", "file-won"]
    assert app.tune_history()[-1].value == 7
    notices = [r for r in app.store.outbox.rows(None) if r.rule_id.startswith("notice:tune:")]
    assert len(notices) == 1 and "the file wins" in json.loads(notices[0].payload)["text"]
    app.check(date(2024, 7, 18))
    assert len([r for r in app.store.outbox.rows(None) if r.rule_id.startswith("notice:tune:")]) == 1


# -- export: the overrides into rules.yaml, every comment kept -------------------------------------------

def test_export_changes_only_the_values_and_the_file_still_validates_and_passes_its_tests(app, config):
    before = (config / "rules.yaml").read_text().splitlines()
    app.tune_apply("small-cap-trap", "lead", "6", WHO)
    app.tune_apply("risk-off-pivot", "drop", "-5.5", WHO)
    changes = app.tune_export("terminal:me")
    assert {(c.rule, c.name, c.new) for c in changes} == {("small-cap-trap", "lead", 6), ("risk-off-pivot", "drop", -5.5)}
    after = (config / "rules.yaml").read_text().splitlines()
    assert len(after) == len(before)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == [
        ("    params: {lead: 5, rise: 0}   # IWM ahead of SPY, points in 10 sessions; 10y change, points in 5",
         "    params: {lead: 6, rise: 0}   # IWM ahead of SPY, points in 10 sessions; 10y change, points in 5"),
        ("    params: {drop: -6}   # IWM % below its 10-session high",
         "    params: {drop: -5.5} # IWM % below its 10-session high"),  # the comment keeps its column
    ]
    comments = [line for line in before if line.lstrip().startswith("#")]
    assert comments and comments == [line for line in after if line.lstrip().startswith("#")]
    assert app.tune_list() == [] and app.tune_history()[-1].kind == "exported"
    fresh = App(LiveConfig(config / "rules.yaml", config), store=app.store, data_dir=app.data_dir)
    assert fresh.rule("small-cap-trap").params["lead"] == 6  # from the file now, not an override
    result = fresh.test_rules()
    assert all(o.ok for o in result.outcomes), [o.message for o in result.outcomes if not o.ok]


def test_the_cli_previews_applies_lists_and_exports(config, data_dir, monkeypatch, capsys):
    from bot.cli import main
    monkeypatch.setenv("CLOSEBELL_CONFIG", str(config))
    base = ["tune", "--data-dir", str(data_dir)]
    assert main(base + ["small-cap-trap", "lead=6"]) == 0
    assert "Preview: small-cap-trap lead 5 → 6" in capsys.readouterr().out
    assert main(base + ["small-cap-trap", "lead=9", "--apply"]) == 2  # breaks a golden test
    assert "--break-tests" in capsys.readouterr().err
    assert main(base + ["small-cap-trap", "lead=6", "--apply"]) == 0
    assert main(base + ["--list"]) == 0
    assert "small-cap-trap lead = 6 (file: 5; set by terminal:" in capsys.readouterr().out
    assert main(base + ["--export"]) == 0
    assert "params: {lead: 6, rise: 0}" in (config / "rules.yaml").read_text()
    assert main(["validate", "--data-dir", str(data_dir)]) == 0
    assert main(["test-rules", "--data-dir", str(data_dir)]) == 0


# -- /tune through the Telegram Bot API stand-in -------------------------------------------------------

def buttons(call) -> dict:
    markup = call.fields.get("reply_markup")
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return {b["text"]: b["callback_data"] for row in (markup or {}).get("inline_keyboard", []) for b in row}


def tune_preview(app, telegram, text):
    telegram.push_command(1001, text)
    count = len(telegram.sent("sendMessage"))
    assert run_poller_until(app, lambda: len(telegram.sent("sendMessage")) > count)
    return telegram.sent("sendMessage")[-1]


def press(app, telegram, data, message_id=50):
    count = len(telegram.sent("answerCallbackQuery"))
    telegram.push_callback(1001, data, message_id=message_id)
    assert run_poller_until(app, lambda: len(telegram.sent("answerCallbackQuery")) > count)
    return telegram.sent("answerCallbackQuery")[-1].fields["text"]


def button(call, label):
    return next(v for k, v in buttons(call).items() if label in k)


def test_tune_in_telegram_previews_applies_once_and_shows_in_rules(app, telegram):
    listing = tune_preview(app, telegram, "/tune small-cap-trap")
    assert "lead = 5 (file)" in listing.fields["text"] and "[5: 0.54]" in listing.fields["text"]
    preview = tune_preview(app, telegram, "/tune small-cap-trap lead 6")
    before, after = sweep_figures(app, "lead=5,6")
    assert f"firings a year: {before.per_year:.2f} → {after.per_year:.2f}" in preview.fields["text"]
    assert set(buttons(preview)) == {"✅ Apply", "✖️ Cancel"}
    assert app.tune_list() == []
    answer = press(app, telegram, button(preview, "Apply"))
    assert answer.startswith("Applied: small-cap-trap lead 5 → 6")
    assert app.rule("small-cap-trap").params["lead"] == 6
    assert [s.id for s in app.check(date(2024, 11, 6)).fired] == []  # the next evaluation uses it
    edits = telegram.sent("editMessageReplyMarkup")
    assert edits and edits[-1].fields["message_id"] in (50, "50")
    confirmation = telegram.sent("sendMessage")[-1]
    assert set(buttons(confirmation)) == {"↩️ Undo"}
    assert "was applied already" in press(app, telegram, button(preview, "Apply"))  # never twice
    assert [e.kind for e in app.tune_history()] == ["applied"]
    assert app.tune_history()[0].who == WHO
    rules = tune_preview(app, telegram, "/rules")
    assert "runs with an override: lead 6 (file: 5)" in rules.fields["text"]
    assert press(app, telegram, button(confirmation, "Undo")).startswith("Undone: small-cap-trap lead 6 → 5")
    assert app.rule("small-cap-trap").params["lead"] == 5


def test_cancel_an_expired_and_a_forged_button_change_nothing(app, telegram):
    preview = tune_preview(app, telegram, "/tune small-cap-trap lead 6")
    apply_data, cancel_data = button(preview, "Apply"), button(preview, "Cancel")
    forged = apply_data[:-1] + ("A" if apply_data[-1] != "A" else "B")
    assert "not valid" in press(app, telegram, forged)
    assert "not valid" in press(app, telegram, apply_data.replace("|a|", "|y|"))  # signed per action
    assert press(app, telegram, cancel_data).startswith("Cancelled")
    assert "was cancelled already" in press(app, telegram, apply_data)
    late = tune_preview(app, telegram, "/tune small-cap-trap lead 7")
    app.clock.advance(timedelta(hours=1, minutes=1))
    assert "expired" in press(app, telegram, button(late, "Apply"))
    assert app.tune_list() == [] and app.tune_history() == []
    assert app.rule("small-cap-trap").params["lead"] == 5


def test_a_value_breaking_a_golden_test_needs_a_second_confirmation(app, telegram):
    preview = tune_preview(app, telegram, "/tune small-cap-trap lead 9")
    assert "BREAKS 1 of 22" in preview.fields["text"] and "rules.test.yaml:21:5" in preview.fields["text"]
    answer = press(app, telegram, button(preview, "Apply"))
    assert "breaks these golden tests" in answer
    assert app.tune_list() == []
    confirm = telegram.sent("sendMessage")[-1]
    assert set(buttons(confirm)) == {"⚠️ Apply anyway", "✖️ Cancel"}
    assert press(app, telegram, button(confirm, "Apply anyway")).startswith("Applied: small-cap-trap lead 5 → 9")
    assert app.rule("small-cap-trap").params["lead"] == 9
    assert tune_preview(app, telegram, "/tune small-cap-trap reset").fields["text"].startswith(
        "Reset: small-cap-trap lead 9 → 5")
