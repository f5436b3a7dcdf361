"""Tuning a rule from the phone: the rules in force, the preview with its evidence, apply, reset, export.

**Rules in force** are the rules file plus the parameter overrides kept in the
store (bot.store.overrides). `App.loaded` composes them (`in_force`), so
every verb that evaluates — check, explain, backtest, sweep, test-rules, the
session job of `run` (in its child process too, which opens the same store)
— runs what the phone set, and says so. Replay simulates on a store of its
own, which holds no overrides: it replays the file. With `--data-dir`, the
deployment's store is consulted only when it exists (a SQLite file already
there, or DATABASE_URL), so an offline analysis on a fresh machine neither
creates a store nor pays for SQLAlchemy.

**The file wins.** An override records the file's value when it was applied.
When the file later says something else for that parameter (or drops it, or
the rule), the override is retired with a "file-won" event in the history and
the admin channel is told once; the edit a user committed is never shadowed.

**A preview** is the evidence before a change: firings a year and the last
firings before -> after, read off the sweep engine (the very figures `sweep
RULE NAME=OLD,NEW` prints), the benchmark's forward returns and, where the
backtest reports one, its verdict, before -> after; the golden tests of
`rules.test.yaml` with the new value (each expectation the change breaks,
by its line); what `validate` would warn about the new value (a threshold
never reached: basis points written as points). A value is checked as the
file's would be (a number; a window a whole number of sessions) and refused
with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bot.errors import ConfigError, UsageError
from bot.suggest import did_you_mean

log = logging.getLogger(__name__)

PREVIEW_LIFETIME = timedelta(hours=1)  # an Apply button older than this is refused, and says so


# -- the rules in force ------------------------------------------------------------------------------

def overrides_store(app):
    """The store whose overrides are in force: the app's, or with --data-dir the deployment's if it exists."""
    if app._store is not None or not app.data_dir:
        return app.store
    from bot.settings import env  # deliberately lazy: only for --data-dir verbs
    from bot.settings.paths import state_dir  # deliberately lazy: as above
    if env.get("DATABASE_URL") or (state_dir() / "closebell.db").exists():
        return app.store
    return None


def in_force(app, loaded):
    """`loaded` (the file's configuration) with the store's overrides bound into its rules."""
    store = overrides_store(app)
    if store is None or loaded.overrides:  # no store; or composed already (never bind twice)
        return loaded
    rows = store.overrides.current()
    if not rows:
        return loaded
    key = (id(loaded), tuple(rows))
    cached = getattr(app, "_in_force", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    from bot.engine.rules import with_params  # deliberately lazy: only when an override exists
    from bot.settings.live import Loaded  # deliberately lazy: as above
    by_id = {r.id: r for r in loaded.rules}
    wanted: dict[str, dict] = {}
    for row in rows:
        rule = by_id.get(row.rule_id)
        file_value = None if rule is None else rule.params.get(row.param)
        if file_value is None or file_value != row.file_value:
            _file_won(app, store, loaded, row, file_value)
            continue
        wanted.setdefault(row.rule_id, {})[row.param] = row
    rules = []
    for rule in loaded.rules:
        chosen = wanted.get(rule.id)
        if chosen:
            try:
                rule = with_params(rule, {name: row.value for name, row in chosen.items()})
            except (KeyError, ValueError) as exc:  # checked when applied; a rule rewritten since may refuse it
                log.warning("override of %s not applied: %s", rule.id, exc)
                wanted.pop(rule.id)
        rules.append(rule)
    out = Loaded(loaded.series, loaded.settings, rules, overrides=wanted)
    app._in_force = (key, out)
    return out


def _file_won(app, store, loaded, row, file_value):
    """The file changed (or dropped) a parameter the phone had set: the file wins, the user hears it once."""
    removed = store.overrides.retire("file-won", row.rule_id, row.param,
                                     {row.param: file_value} if file_value is not None else {}, "file",
                                     app.clock.now())
    if not removed:
        return  # another process retired it (and told the user)
    now_text = f"now {_num(file_value)} from the file" if file_value is not None else "no longer in the file"
    text = (f"The rules file changed {row.rule_id} {row.param} ({now_text}); the file wins over the override "
            f"set from the phone ({_num(row.value)}, by {row.who} on {row.at:%Y-%m-%d %H:%M} UTC), which is "
            "kept in `closebell tune --history` and no longer applied.")
    log.warning(text)
    from bot.notify.delivery import admin_notice  # deliberately lazy: only when the file won
    key = hashlib.sha256(f"{row.rule_id}|{row.param}|{row.at.isoformat()}".encode()).hexdigest()[:16]
    admin_notice(store, loaded.settings, f"tune:{key}", text, now=app.clock.now())


def override_notes(loaded, rule_id: str) -> str | None:
    """'lead 6 (file: 5), set from the phone' for a rule running with overrides, else None."""
    chosen = getattr(loaded, "overrides", {}).get(rule_id)
    if not chosen:
        return None
    parts = [f"{name} {_num(row.value)} (file: {_num(row.file_value)})" for name, row in chosen.items()]
    return f"runs with an override: {', '.join(parts)}"


def notes(loaded) -> dict[str, str]:
    """rule id -> its override note, for every rule running with one."""
    return {rid: override_notes(loaded, rid) for rid in getattr(loaded, "overrides", {})}


def mark_alerts(pairs, loaded):
    """(Alert, notify) pairs with a line under the text of each alert whose rule runs with an override."""
    out = []
    for alert, notify in pairs:
        note = override_notes(loaded, alert.rule_id)
        if note and alert.kind == "alert":
            alert = dataclasses.replace(alert, text=f"{alert.text}\n(tuned from the phone: {note})")
        out.append((alert, notify))
    return out


# -- values -------------------------------------------------------------------------------------------

def parse_value(text) -> float:
    """A number as the user wrote it ('6', '0.05', '-6'); UsageError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        try:
            value = float(str(text).strip().replace("−", "-"))
        except ValueError:
            raise UsageError(f"'{str(text)[:20]}' is not a number; write e.g. 6 or 0.05 (yields in points: "
                             "0.05 = 5 bp)") from None
    if not math.isfinite(value):
        raise UsageError(f"'{str(text)[:20]}' is not a finite number")
    return value


def checked(rule, name: str, value: float):
    """`rule` with `name` set to `value`, checked as the file's value would be; UsageError with the reason."""
    from bot.engine.rules import with_params  # deliberately lazy: the engine's binding
    if name not in rule.params:
        declared = ", ".join(rule.params) or "none"
        raise UsageError(f"{rule.id} has no parameter '{name}'{did_you_mean(name, rule.params)} "
                         f"(its params: {declared})")
    try:
        return with_params(rule, {name: value})
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc.args[0] if exc.args else exc)) from None


def _num(value) -> str:
    return "-" if value is None else f"{value:g}"


# -- the preview --------------------------------------------------------------------------------------

@dataclass
class TunePreview:
    rule: str
    name: str
    value: float
    current: float  # the value in force now
    file_value: float
    source: str  # "the file" | "a phone override"
    before: object  # bot.engine.sweep.Figures at the current value ...
    after: object  # ... and at the new one
    benchmark: str | None
    direction: str
    dependents: dict[str, tuple[int, int]] = field(default_factory=dict)  # rule -> firings before, after
    verdict: tuple[str | None, str | None] = (None, None)  # the backtest's verdict, where it reports one
    tests_path: str | None = None
    tests_total: int = 0
    broken: list[str] = field(default_factory=list)  # file:line:col: … of each expectation the change breaks
    mended: list[str] = field(default_factory=list)  # … and each one it makes pass
    warnings: list[str] = field(default_factory=list)  # what validate would say about the new value

    @property
    def breaks(self) -> bool:
        return bool(self.broken)


def preview(app, rule_id: str, name: str, value) -> TunePreview:
    """The evidence for `rule_id` `name` = `value`, against the rules in force; nothing is changed."""
    from bot.engine import evaluate as engine  # deliberately lazy: the preview's own evaluation
    from bot.engine.returns import benchmark_of, direction_of  # deliberately lazy: as above
    from bot.engine.sweep import sweep  # deliberately lazy: as above
    from bot.engine.warnings import never_reached_warnings  # deliberately lazy: as above
    loaded = app.loaded
    rule = app.rule(rule_id)
    value = parse_value(value)
    tuned = checked(rule, name, value)
    file_rule = next(r for r in app.config.get().rules if r.id == rule_id)
    current = rule.params[name]
    source = "a phone override" if name in loaded.overrides.get(rule_id, {}) else "the file"
    prepared = app.evaluate()
    before_ev = prepared.evaluation
    rows = sweep(loaded.rules, prepared.frame, rule_id, {name: [current, value]}, evaluation=before_ev)
    new_rules = [tuned if r.id == rule_id else r for r in loaded.rules]
    after_ev = engine.evaluate(new_rules, prepared.frame)
    dependents = {dep: (rows[0].dependents[dep], rows[1].dependents[dep]) for dep in rows[0].dependents or {}}
    result = TunePreview(rule_id, name, value, current, file_rule.params[name], source, rows[0].figures,
                         rows[-1].figures, benchmark_of(rule, prepared.frame), direction_of(rule), dependents)
    # the backtest's 20-session verdict (bot.engine.significance), read off the same sweep rows
    result.verdict = tuple(_verdict(row.figures) for row in (rows[0], rows[-1]))
    result.warnings = [str(w) for w in never_reached_warnings(after_ev) if getattr(w, "rule", None) == rule_id
                       and str(w) not in {str(x) for x in never_reached_warnings(before_ev)}]
    _golden(app, result, before_ev, after_ev, new_rules)
    return result


def _verdict(figures, horizon: int = 20) -> str | None:
    stats = figures.forward.get(horizon)
    return None if stats is None else stats.verdict


def _golden(app, result: TunePreview, before_ev, after_ev, rules) -> None:
    """Which expectation of rules.test.yaml the change breaks (or mends), by its line."""
    from bot.engine.expectations import check_expectations  # deliberately lazy: the tests file only
    from bot.settings.rules_tests_file import load_tests, rules_tests_path  # deliberately lazy: as above
    path = rules_tests_path(app.config.rules_path)
    if not path.exists():
        return
    expectations = load_tests(path, rules)
    before = check_expectations(before_ev, expectations)
    after = check_expectations(after_ev, expectations)
    result.tests_path = str(path)
    result.tests_total = len(after)
    result.broken = [a.message for b, a in zip(before, after) if b.ok and not a.ok]
    result.mended = [a.message for b, a in zip(before, after) if not b.ok and a.ok]


# -- changes ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TuneChange:
    rule: str
    name: str
    old: float
    new: float
    file_value: float
    kind: str  # applied | reset

    def line(self) -> str:
        if self.kind == "reset":
            return f"{self.rule} {self.name} {_num(self.old)} → {_num(self.new)} (back to the file's value)"
        return (f"{self.rule} {self.name} {_num(self.old)} → {_num(self.new)} (the file says "
                f"{_num(self.file_value)}); the next evaluation uses it")


def apply(app, rule_id: str, name: str, value, who: str) -> TuneChange:
    """Set the override (checked like the file's value) and record it; the next evaluation uses it."""
    rule = app.rule(rule_id)  # in force: an override the file has overridden since is retired first
    value = parse_value(value)
    checked(rule, name, value)
    file_value = next(r for r in app.config.get().rules if r.id == rule_id).params[name]
    old = rule.params[name]
    store = app.store
    if value == file_value:  # the file's own value: nothing to override
        removed = store.overrides.retire("reset", rule_id, name, {name: file_value}, who, app.clock.now())
        return TuneChange(rule_id, name, old, file_value, file_value, "reset" if removed else "applied")
    store.overrides.set(rule_id, name, value, file_value, old, who, app.clock.now())
    return TuneChange(rule_id, name, old, value, file_value, "applied")


def reset(app, rule_id: str, name: str | None, who: str) -> list[TuneChange]:
    """The file's values back for `rule_id` (one parameter, or every one it overrides)."""
    rule = app.rule(rule_id)
    if name is not None and name not in rule.params:
        checked(rule, name, 0.0)  # the did-you-mean
    file_rule = next(r for r in app.config.get().rules if r.id == rule_id)
    removed = app.store.overrides.retire("reset", rule_id, name, dict(file_rule.params), who, app.clock.now())
    return [TuneChange(rule_id, row.param, row.value, file_rule.params.get(row.param, row.file_value),
                       row.file_value, "reset") for row in removed]


# -- export: the overrides into the rules file, comments kept ----------------------------------------

def export(app, who: str) -> list[TuneChange]:
    """Write every override in force into the rules file in place (ruamel.yaml round-trip: every comment,
    the order and the layout kept; only the values change), check the result like `validate`, then clear
    the overrides (history kind "exported"). A file that would not validate is restored and nothing is
    cleared."""
    loaded = app.loaded  # retires overrides the file already overrode
    chosen = loaded.overrides
    if not chosen:
        return []
    path = Path(app.config.rules_path)
    original = path.read_bytes()
    write_values(path, {rid: {name: row.value for name, row in params.items()} for rid, params in chosen.items()})
    try:
        from bot.settings.rules_file import load_rules  # deliberately lazy: export only
        load_rules(path, loaded.series)
    except ConfigError:
        path.write_bytes(original)
        raise
    changes = []
    for rule_id, params in chosen.items():
        for name, row in params.items():
            app.store.overrides.retire("exported", rule_id, name, {name: row.value}, who, app.clock.now())
            changes.append(TuneChange(rule_id, name, row.file_value, row.value, row.value, "exported"))
    return changes


def write_values(path: Path, values: dict[str, dict[str, float]]) -> None:
    """Set params in the rules file at `path` in place; everything else byte for byte as it was."""
    from ruamel.yaml import YAML  # deliberately lazy: the round-trip parser only for export
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    text = path.read_text()
    doc = yaml.load(text)
    indent = _indents(text)
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    for item in doc.get("rules") or []:
        rid = item.get("id")
        if rid in values:
            for name, value in values[rid].items():
                old = item["params"][name]
                item["params"][name] = int(value) if value == int(value) and isinstance(old, int) else value
    with path.open("w") as out:
        yaml.dump(doc, out)


def _indents(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, dash offset) as the file writes them, so the dump lays it out the same way."""
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("- ") and not line.lstrip().startswith("#"):
            offset = len(line) - len(stripped)
            return 2, offset + 2, offset
    return 2, 2, 0


# -- previews behind buttons ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Press:
    """What a press on a preview's button did: the text to answer, and whether the preview is now closed."""

    text: str
    closed: bool = False  # the preview's buttons should go (applied, cancelled, expired, used)
    confirm: bool = False  # ask for the second, explicit confirmation
    undo: bool = False  # offer Undo under the answer
    changed: bool = False


def open_preview(app, rule_id: str, name: str, value, who: str) -> tuple[int, TunePreview]:
    """The preview, kept in the store so that its Apply button (which names its id) can apply it."""
    result = preview(app, rule_id, name, value)
    preview_id = app.store.overrides.preview_add(rule_id, name, result.value, "\n".join(result.broken), who,
                                                 app.clock.now())
    return preview_id, result


def press(app, preview_id: int, action: str, who: str) -> Press:
    """apply | confirm | cancel | undo on preview `preview_id`. A preview applies once, within the hour."""
    store = app.store
    row = store.overrides.preview(preview_id)
    if row is None:
        return Press("This preview is unknown here (made by another store?); nothing changed.", closed=True)
    command = f"/tune {row.rule_id} {row.param} {_num(row.value)}"
    if action == "undo":
        changes = reset(app, row.rule_id, row.param, who)
        if not changes:
            return Press(f"{row.rule_id} {row.param} runs the file's value already; nothing to undo.", closed=True)
        return Press("Undone: " + changes[0].line(), closed=True, changed=True)
    if row.state != "open":
        return Press(f"This preview was {row.state} already; nothing changed. Send {command} again for a new one.",
                     closed=True)
    age = app.clock.now() - row.created_at
    if age > PREVIEW_LIFETIME:
        store.overrides.preview_close(preview_id, "expired")
        minutes = int(PREVIEW_LIFETIME.total_seconds() // 60)
        return Press(f"This preview expired (made {row.created_at:%H:%M} UTC; previews last {minutes} minutes); "
                     f"nothing changed. Send {command} for a fresh one.", closed=True)
    if action == "cancel":
        store.overrides.preview_close(preview_id, "cancelled")
        return Press(f"Cancelled; {row.rule_id} {row.param} unchanged.", closed=True)
    if action == "apply" and row.breaks:
        return Press(f"Applying {row.rule_id} {row.param} = {_num(row.value)} breaks these golden tests:\n"
                     f"{row.breaks}\nPress “Apply anyway” to confirm, or Cancel.", confirm=True)
    if action not in ("apply", "confirm"):
        return Press("Unknown action; nothing changed.")
    if not store.overrides.preview_close(preview_id, "applied"):
        return Press("This preview was used already; nothing changed.", closed=True)
    change = apply(app, row.rule_id, row.param, row.value, who)
    return Press("Applied: " + change.line(), closed=True, undo=True, changed=True)


# -- what nearby values would do ---------------------------------------------------------------------

def nearby_values(value: float) -> list[float]:
    """Two values either side of `value`, a round step apart (yields at 0: 5 bp steps)."""
    if value == 0:
        step = 0.05
    else:
        raw = abs(value) * 0.2
        power = 10 ** math.floor(math.log10(raw))
        step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    return [round(value + k * step, 10) for k in (-2, -1, 0, 1, 2)]


@dataclass(frozen=True)
class ParamView:
    name: str
    value: float
    file_value: float
    source: str  # file | phone override
    nearby: list[tuple[float, float | None]]  # (value, firings a year)


def params_view(app, rule_id: str) -> list[ParamView]:
    """Each parameter of the rule: its value, where it came from, and firings a year at nearby values."""
    from bot.engine.sweep import sweep  # deliberately lazy: the sweep engine
    loaded = app.loaded
    rule = app.rule(rule_id)
    file_rule = next(r for r in app.config.get().rules if r.id == rule_id)
    prepared = app.evaluate()
    out = []
    for name, value in rule.params.items():
        values = []
        for v in nearby_values(value):
            try:
                checked(rule, name, v)
                values.append(v)
            except UsageError:
                continue
        rows = sweep(loaded.rules, prepared.frame, rule_id, {name: values}, evaluation=prepared.evaluation)
        source = "phone override" if name in loaded.overrides.get(rule_id, {}) else "file"
        out.append(ParamView(name, value, file_rule.params[name], source,
                             [(row.params[name], row.per_year) for row in rows]))
    return out
