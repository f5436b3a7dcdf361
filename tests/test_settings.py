"""settings.yaml, series.yaml and the environment (.env): typed, validated once, mistakes reported at file:line:col."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from bot.errors import ConfigError
from bot.settings.load import load_series, load_settings
from tests.conftest import ROOT, subprocess_env


def test_the_shipped_settings_and_series_are_valid():
    settings = load_settings(ROOT / "config" / "settings.yaml")
    assert settings.schedule.offset_minutes == 30 and settings.notify.default is None
    series = load_series(ROOT / "config" / "series.yaml")
    assert series["DGS10"].chain[0].source == "treasury" and series["DGS10"].chain[1].source == "fred"
    assert series["CPIAUCSL"].frequency == "monthly"


@pytest.mark.parametrize("name,text,where,words", [
    ("settings.yaml", "schedule:\n  ofset_minutes: 45\n", "2:3", "unknown field 'ofset_minutes'; did you mean "
                                                                  "'offset_minutes'?"),
    ("settings.yaml", "schedule:\n  deadline: 25:00\n", "2:13", "'deadline'"),
    ("settings.yaml", "notify:\n  default: [sms]\n", "2:13", "'console', 'telegram', 'email' or 'apprise'"),
    ("settings.yaml", "sources:\n  tresury: {base_url: x}\n", "2:3", "unknown source 'tresury'; did you mean "
                                                                      "'treasury'?"),
    ("series.yaml", "series:\n  IWM: {source: yahooo}\n", "2:17", "unknown source 'yahooo'; did you mean 'yahoo'?"),
    ("series.yaml", "series:\n  IWM: {source: yahoo, unit: price}\n", "2:24", "unknown field 'unit'; did you "
                                                                              "mean 'units'?"),
    ("series.yaml", "series:\n  10Y: {source: fred}\n", "2:3", "must start with a letter"),
    ("series.yaml", "series:\n  CPI: {source: fred, frequency: weekly}\n", "2:34", "'daily' or 'monthly'"),
])
def test_a_settings_mistake_is_reported_at_its_place(tmp_path, name, text, where, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        (load_settings if name == "settings.yaml" else load_series)(path)
    first = str(info.value.problems[0])
    assert first.startswith(f"{path}:{where}: "), first
    assert words in first, first


# -- secrets and deployment settings: the environment, read once into one typed object --------------------

NOTIFY = ROOT / "bot" / "notify"


def reads_the_environment(path) -> list[str]:
    """Every `os.environ` / `os.getenv` / `from os import environ, getenv` in `path`, as file:line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                {a.name for a in node.names} & {"environ", "environb", "getenv"}:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_notifier_module_reads_the_environment():
    """Notifiers are handed their secrets (bot.settings.env.Environment), never read os.environ."""
    assert [hit for path in sorted(NOTIFY.rglob("*.py")) for hit in reads_the_environment(path)] == []


BAD_VALUES = [
    # (variable, value, the one line on stderr)
    ("SMTP_PORT", "abc", "environment: SMTP_PORT=abc: not a whole number; write a port number from 1 to 65535, "
                         "e.g. SMTP_PORT=587"),
    ("SMTP_PORT", "70000", "environment: SMTP_PORT=70000: above 65535; write a port number from 1 to 65535"),
    ("SMTP_SECURITY", "tls", "environment: SMTP_SECURITY=tls: not one of ssl, starttls, none; write ssl, starttls "
                             "or none"),
    ("TELEGRAM_CHAT_IDS", "1001,me", "environment: TELEGRAM_CHAT_IDS=1001,me: 'me' is not a chat id; write chat "
                                     "ids separated by commas"),
    ("TELEGRAM_BASE_URL", "localhost:8081", "environment: TELEGRAM_BASE_URL=localhost:8081: not an http(s) URL"),
    ("EMAIL_TO", "me@example.com;you", "environment: EMAIL_TO=me@example.com;you: 'me@example.com;you' is not an "
                                       "address; write addresses separated by commas"),
    ("HEARTBEAT_URL", "hc-ping.com/f00d-secret", "environment: HEARTBEAT_URL (value withheld: it is a secret): not "
                                                 "an http(s) URL; write an http(s) ping URL"),
]


def closebell(*args, cwd, **env):
    """The command with only the settings given (none inherited from this test process)."""
    from bot.settings.env import NAMES
    child = {k: v for k, v in subprocess_env(**env).items() if k not in NAMES or k in env}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd,
                          env=child, timeout=120)


@pytest.mark.parametrize("name,value,line", BAD_VALUES, ids=[f"{n}={v}" for n, v, _ in BAD_VALUES])
def test_a_bad_setting_is_one_line_at_start_up_with_what_to_write(tmp_path, name, value, line):
    proc = closebell("validate", cwd=tmp_path, CLOSEBELL_HOME=tmp_path / "home", **{name: value})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.splitlines()[0], "1 problem found"], proc.stderr
    assert proc.stderr.startswith(line), proc.stderr
    if name == "HEARTBEAT_URL":
        assert "f00d-secret" not in proc.stderr + proc.stdout


def test_a_bad_setting_in_dotenv_names_its_line_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("# mail\nexport SMTP_HOST='mail.example.com'  # mine\nSMTP_PORT=abc\n"
                                   "SMTP_SECURITY=tls\n")
    proc = closebell("validate", cwd=tmp_path, CLOSEBELL_HOME=tmp_path / "home", SMTP_SECURITY="starttls")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [".env:3:1: SMTP_PORT=abc: not a whole number; write a port "
                                        "number from 1 to 65535, e.g. SMTP_PORT=587 (STARTTLS) or SMTP_PORT=465 (SSL)",
                                        "1 problem found"]


def test_the_environment_object_is_typed_and_never_shows_a_secret(monkeypatch):
    from bot.settings import env
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:very-secret-token")
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", " 1001, -1002 ")
    monkeypatch.setenv("SMTP_PORT", "465")
    monkeypatch.setenv("APPRISE_URLS", "ntfys://ntfy.sh/secret-topic")
    environment = env.current()
    assert (environment.telegram_chat_ids, environment.smtp_port) == (("1001", "-1002"), 465)
    assert environment.telegram_bot_token == "123456:very-secret-token" and env.current() is environment
    shown = repr(environment) + str(environment)
    assert "very-secret" not in shown and "secret-topic" not in shown and "telegram_bot_token='<set>'" in shown


def test_the_environment_names_are_one_list():
    from bot.settings.env import NAMES, SECRET_NAMES
    from bot.settings.environment import WRITE, EnvironmentModel
    assert tuple(EnvironmentModel.model_fields) == NAMES and tuple(WRITE) == NAMES
    assert set(SECRET_NAMES) <= set(NAMES)


def test_dotenv_in_the_working_directory_configures_a_channel(tmp_path, telegram):
    (tmp_path / ".env").write_text(f"# secrets\nTELEGRAM_BOT_TOKEN={telegram.token}\nTELEGRAM_CHAT_IDS=1001\n"
                                   f"TELEGRAM_BASE_URL={telegram.url}\n")
    env = subprocess_env(CLOSEBELL_HOME=tmp_path / "home", CLOSEBELL_CONFIG=ROOT / "config")
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_IDS", "TELEGRAM_BASE_URL"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "bot", "notify-test", "--channel", "telegram"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "telegram:1001: ok"
    assert telegram.token not in proc.stdout + proc.stderr
