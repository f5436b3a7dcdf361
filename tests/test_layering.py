"""The shape of the code, checked: imports point down only, SQL lives in the store, time comes from a clock.

adapters (bot/commands, bot/telegram, bot/daemon) -> app (bot/app) -> engine / data / store / notify.
The adapters' text comes from bot/render (results in, lines out), which the layers below never import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def modules(folder: str) -> list[Path]:
    return sorted((BOT / folder).rglob("*.py"))


def offending(paths, forbidden) -> list[str]:
    return [f"{p.relative_to(BOT.parent)} imports {name}" for p in paths for name in sorted(imports_of(p))
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


def test_the_engine_is_pure_it_imports_no_edge_and_no_adapter():
    assert offending(modules("engine"), ["bot.settings", "bot.store", "bot.data", "bot.notify", "bot.daemon",
                                         "bot.commands", "bot.telegram", "bot.app"]) == []


def test_engine_and_app_return_data_and_render_turns_it_into_text():
    """One home for reply text: the engine and the app return data, only adapters call bot.render, and
    bot.render reads results without evaluating, fetching or opening anything."""
    assert offending(modules("engine") + modules("app"), ["bot.render"]) == []
    assert offending(modules("render"), ["bot.app", "bot.engine", "bot.store", "bot.data", "bot.notify",
                                         "bot.settings", "bot.commands", "bot.telegram", "bot.daemon"]) == []
    assert not any(isinstance(node, ast.FunctionDef) and node.name in ("lines", "headline")
                   for path in modules("engine") for node in ast.walk(ast.parse(path.read_text())))


def test_notifiers_see_alerts_never_the_engine():
    assert offending(modules("notify"), ["bot.engine"]) == []


def test_commands_and_chat_handlers_go_through_the_app():
    adapters = modules("commands") + [BOT / "telegram" / "handlers.py"]
    assert offending(adapters, ["bot.store", "bot.data", "bot.engine", "bot.notify"]) == []


def test_nothing_outside_the_store_speaks_sql():
    outside = [p for p in BOT.rglob("*.py") if "store" not in p.relative_to(BOT).parts]
    assert offending(outside, ["sqlalchemy", "sqlite3", "psycopg"]) == []


CLOCK_CALLS = re.compile(r"datetime\.now\(|date\.today\(|time\.time\(|datetime\.utcnow\(|Timestamp\.now\(|"
                         r"Timestamp\.today\(")


@pytest.mark.parametrize("path", [p for p in sorted(BOT.rglob("*.py")) if p.name != "clock.py"],
                         ids=lambda p: str(p.relative_to(BOT)))
def test_time_is_read_through_the_clock_only(path):
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert [line.strip() for line in code if CLOCK_CALLS.search(line)] == []


# -- function-local imports: only where an import is deliberately lazy, and each says so ------------------

LAZY = "deliberately lazy"


def local_imports(path: Path):
    """(line number, line) of every import inside a function of `path`."""
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node.lineno, lines[node.lineno - 1]


@pytest.mark.parametrize("path", sorted(BOT.rglob("*.py")), ids=lambda p: str(p.relative_to(BOT)))
def test_every_function_local_import_is_marked_deliberately_lazy(path):
    """An import inside a function is there for start-up time or memory, never to dodge a cycle, and the
    comment on its line (or the line above) says why: `# deliberately lazy: <why>`."""
    lines = path.read_text().splitlines()
    unmarked = [f"{path.relative_to(BOT.parent)}:{n}: {line.strip()}" for n, line in local_imports(path)
                if LAZY not in line and (n < 2 or LAZY not in lines[n - 2])]
    assert unmarked == []


def test_the_help_path_imports_nothing_heavy_at_module_level():
    """bot/cli.py's top-level imports are the standard library and bot's light modules only."""
    tree = ast.parse((BOT / "cli.py").read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module)
    assert top <= {"__future__", "argparse", "importlib", "os", "sys", "bot", "bot.errors"}, top


# -- one exception tree, one definition of each name list ------------------------------------------------

def test_every_exception_class_is_defined_in_bot_errors():
    outside = []
    for path in sorted(BOT.rglob("*.py")):
        if path == BOT / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.split(".")[-1].endswith(("Error", "Exception", "Exit", "Interrupt")) for b in bases):
                    outside.append(f"{path.relative_to(BOT.parent)}:{node.lineno}: class {node.name}({', '.join(bases)})")
    assert outside == []


def test_every_error_is_a_closebell_error_with_the_documented_exit_code():
    from bot import errors
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BaseException)]
    assert all(issubclass(c, errors.ClosebellError) for c in classes)
    codes = {c.__name__: c.exit_code for c in classes}
    assert codes == {"ClosebellError": 1, "ConfigError": 1, "RuleTextError": 1, "ExprError": 1, "TemplateError": 1,
                     "RulesTestFailed": 1, "UsageError": 2, "SweepError": 2, "SourceError": 3,
                     "SourceUnreachable": 3, "DataError": 3, "StoreError": 4, "DeliveryError": 5}


def test_engine_errors_keep_their_message_and_offset():
    from bot.engine import expr as E
    with pytest.raises(E.ExprError) as caught:
        E.parse("IWM >")
    assert str(caught.value) == caught.value.message and caught.value.offset == 5


def test_channel_and_severity_names_are_defined_once():
    """Channels: bot.settings.models.Channel, one notifier module each. Severities: bot.engine.severity."""
    from bot.engine.severity import SEVERITIES, SEVERITY_ORDER
    from bot.notify.alert import SEVERITY_ICON
    from bot.notify.alert import SEVERITY_ORDER as ALERT_ORDER
    from bot.notify.registry import NOTIFIERS
    from bot.settings.models import CHANNELS, Severity
    assert tuple(NOTIFIERS) == CHANNELS
    assert get_args(Severity) == SEVERITIES == tuple(SEVERITY_ORDER) == tuple(SEVERITY_ICON)
    assert ALERT_ORDER == SEVERITY_ORDER  # the notifiers' ranking, without importing the engine
    names = {frozenset(SEVERITIES): "bot/engine/severity.py", frozenset(CHANNELS): "bot/settings/models.py"}
    repeated = []
    for path in sorted(BOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and \
                    all(isinstance(e, ast.Constant) for e in node.elts):
                home = names.get(frozenset(e.value for e in node.elts))
                if home and str(path.relative_to(BOT.parent)) != home:
                    repeated.append(f"{path.relative_to(BOT.parent)}:{node.lineno}")
    assert repeated == []


# -- one home for each thing: callers import it from there, never through a module that re-exports it -------

def importers_of(module: str) -> list[str]:
    """Every module under bot/ that imports `module` (or a name from it)."""
    return sorted(str(p.relative_to(BOT.parent)) for p in BOT.rglob("*.py") if module in imports_of(p))


def test_only_the_backtest_imports_the_backtest_report():
    """Forward returns, spans and rounding live in bot.engine.returns and validate's warnings in
    bot.engine.warnings, so nothing reaches into the backtest report for a helper."""
    assert importers_of("bot.engine.report") == ["bot/app/backtest.py"]


def test_names_are_imported_from_their_one_home():
    """A name imported from anywhere but where it is defined is a re-export someone must trace."""
    homes = {"did_you_mean": "bot.suggest", "direction_of": "bot.engine.returns",
             "benchmark_of": "bot.engine.returns", "atoms": "bot.engine.expr",
             "never_fired_warnings": "bot.engine.warnings", "never_reached_warnings": "bot.engine.warnings"}
    elsewhere = []
    for path in sorted(BOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                elsewhere += [f"{path.relative_to(BOT.parent)}:{node.lineno}: {alias.name} from {node.module}"
                              for alias in node.names if homes.get(alias.name, node.module) != node.module]
    assert elsewhere == []


SESSION_JOB = {"deadline", "run_session", "_session_job", "queue", "stale", "_notice_stale", "_queue_digest",
               "_heartbeat", "sessions_due", "_notice_missed", "run_due", "catch_up"}


def methods_of(path: Path, class_name: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def test_the_session_job_lives_beside_the_alerts_it_builds_and_app_keeps_the_verbs():
    """The daemon's pipeline is bot/app/session.py's SessionJob; bot/app/core.py is the verbs a user asks.
    Where App keeps one of the job's names (`run --once` catches up), it hands the call on in one line."""
    job = methods_of(BOT / "app" / "session.py", "SessionJob")
    assert SESSION_JOB <= set(job), sorted(SESSION_JOB - set(job))
    app = methods_of(BOT / "app" / "core.py", "App")
    body = {name: [s for s in app[name].body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            for name in SESSION_JOB & set(app)}
    not_handed_on = [name for name, statements in body.items()
                     if len(statements) != 1 or "self.session_job." not in ast.unparse(statements[0])]
    assert not_handed_on == []


def test_a_file_name_says_its_one_job_and_the_outbox_table_is_used_through_its_owner():
    """bot/store/outbox.py is the outbox table (rows, claims, leases); bot/notify/delivery.py queues and sends
    through it; bot/notify/button_codec.py signs and parses callback data, bot/telegram/buttons.py answers a
    press. Callers reach the table as `store.outbox`, not through pass-throughs on Store."""
    from bot.store.store import Store
    assert not (BOT / "notify" / "outbox.py").exists() and not (BOT / "notify" / "buttons.py").exists()
    assert (BOT / "notify" / "delivery.py").exists() and (BOT / "notify" / "button_codec.py").exists()
    assert [name for name in vars(Store) if name.startswith("outbox_")] == []
