"""Shared test fixtures: real servers on 127.0.0.1, real SQLite files, the real PostgreSQL server."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

os.environ["CLOSEBELL_HTTP_BACKOFF"] = "0"  # retries still happen, without sleeping
os.environ.pop("FRED_API_KEY", None)
os.environ.pop("DATABASE_URL", None)

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**extra) -> dict:
    """The environment for a child `python` that imports the bot from this checkout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{k: str(v) for k, v in extra.items()})
    return env


def sqlite_outbox_counts(path) -> dict:
    """Outbox rows per status in a SQLite store another process is writing (read-only, WAL allows it)."""
    import sqlite3
    if not Path(path).exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    except sqlite3.Error:
        return {}


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own state directory, and reads the shipped config unless it says otherwise."""
    monkeypatch.setenv("CLOSEBELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOSEBELL_CONFIG", str(ROOT / "config"))
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_IDS", "SMTP_HOST", "EMAIL_TO", "DATABASE_URL", "APPRISE_URLS",
                 "HEARTBEAT_URL"):
        monkeypatch.delenv(name, raising=False)


def copy_config(tmp_path, settings_yaml: str = "notify:\n  admin: console\n  charts: false\n") -> Path:
    """A config directory of its own: the shipped series and rules, and `settings_yaml`."""
    import shutil
    path = tmp_path / "config"
    path.mkdir()
    for name in ("series.yaml", "rules.yaml"):
        shutil.copy(ROOT / "config" / name, path / name)
    (path / "settings.yaml").write_text(settings_yaml)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real shipped history (../shared/data, or $CLOSEBELL_DATA_DIR)."""
    path = Path(os.environ.get("CLOSEBELL_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not (path / "IWM.csv").is_file():
        if os.environ.get("CLOSEBELL_REQUIRE_DATA"):
            pytest.fail(f"CLOSEBELL_REQUIRE_DATA is set but {path} holds no IWM.csv")
        pytest.skip(f"real history not found at {path}; set CLOSEBELL_DATA_DIR")
    return path


def postgres_url() -> str:
    url = os.environ.get("CLOSEBELL_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CLOSEBELL_REQUIRE_POSTGRES"):
            pytest.fail("CLOSEBELL_REQUIRE_POSTGRES is set but CLOSEBELL_TEST_DATABASE_URL is not")
        pytest.skip("PostgreSQL tests need CLOSEBELL_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    return url


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose connections live in a fresh schema, dropped afterwards."""
    import sqlalchemy as sa
    from bot.store.store import database_url
    base = database_url(postgres_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {base} is not reachable: {exc.orig}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    from bot.store import Store
    s = Store(store_url)
    yield s
    s.close()


@pytest.fixture
def series_defs():
    from bot.settings.load import load_series
    return load_series(ROOT / "config" / "series.yaml")


@pytest.fixture
def telegram(monkeypatch):
    """The Bot API stand-in, with the environment pointing python-telegram-bot at it."""
    from tests.telegram_stub import TelegramStub
    stub = TelegramStub().start()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", stub.token)
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "1001,1002")
    monkeypatch.setenv("TELEGRAM_BASE_URL", stub.url)
    yield stub
    stub.stop()


class SmtpSink:
    """What a real aiosmtpd server on 127.0.0.1 received."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        import email
        import email.policy
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


smtp_options: dict = {}


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 without TLS; the environment points email at it."""
    from aiosmtpd.controller import Controller
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_SECURITY", "none")
    monkeypatch.setenv("EMAIL_FROM", "bot@closebell.test")
    monkeypatch.setenv("EMAIL_TO", "me@closebell.test, partner@closebell.test")
    sink.controller = controller
    yield sink
    controller.stop()


def wait_for(condition, seconds: float = 20, step: float = 0.05) -> bool:
    """Poll `condition` until it holds or `seconds` pass; its last answer (tests assert on it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
