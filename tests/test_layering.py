"""The shape of the code, checked: imports point down only, SQL lives in the store, time comes from a clock.

adapters (bot/commands, bot/telegram, bot/daemon) -> app (bot/app) -> engine / data / store / notify.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

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
