"""Hostile inputs, one row each: what a stranger, a broken source or a slip of the keyboard hands the bot, and
the one line (and exit code) the user sees. Every input is made here; the CLI runs as a subprocess, as the
user would run it. README's "When things go wrong" lists the same rows.

Each row: (what, make(tmp_path, server) -> (argv, env), exit code, the lines stderr must be). `make` builds the
input (a file, a FIFO, a gzip bomb served on 127.0.0.1) and returns the command line that meets it.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.conftest import ROOT, subprocess_env

DATA = Path(os.environ.get("CLOSEBELL_DATA_DIR") or ROOT.parent / "shared" / "data")
TREASURY = re.compile(r"/resource-center/data-chart-center/interest-rates/daily-treasury-rates\.csv/\d+/all")
FRED_CSV = "observation_date,DGS10\n2024-07-10,4.28\n2024-07-11,4.20\n2024-07-15,4.23\n"
BOMB_UNPACKED = 200 * 1024 * 1024  # 200 MB of zeros, ~200 KB on the wire: the old reader held it twice
RSS_LIMIT_MB = 300  # a fetch of one series peaks near 100 MB


def gzip_bomb(size: int = BOMB_UNPACKED) -> bytes:
    """gzip of `size` zero bytes, made in 1 MB steps (never `size` bytes in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header, as Content-Encoding: gzip says
    block = bytes(1024 * 1024)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


_BOMB: list[bytes] = []


def bomb() -> bytes:
    if not _BOMB:
        _BOMB.append(gzip_bomb())
    return _BOMB[0]


# What a run costs: peak RSS of the child, printed by the wrapper below on a line of its own.
PEAK = "closebell-test-peak-rss-kb="
WRAPPER = ("import atexit, resource, runpy, sys\n"
           f"atexit.register(lambda: print('{PEAK}%d' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
           " file=sys.stderr))\n"
           "sys.argv = ['bot', *sys.argv[1:]]\n"
           "runpy.run_module('bot', run_name='__main__')\n")


def cli(argv, env=None, timeout=60):
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=subprocess_env(**(env or {})))
    lines = proc.stderr.splitlines()
    peak = [int(line[len(PEAK):]) // 1024 for line in lines if line.startswith(PEAK)]
    return proc.returncode, [line for line in lines if not line.startswith(PEAK)], (peak or [0])[0]


# -- the inputs -----------------------------------------------------------------------------------------

def config(tmp_path, server=None, tests_yaml=None) -> Path:
    """The shipped series and rules; sources pointed at the local server."""
    cfg = tmp_path / "cfg"
    cfg.mkdir(exist_ok=True)
    for name in ("series.yaml", "rules.yaml"):
        (cfg / name).write_bytes((ROOT / "config" / name).read_bytes())
    settings = "notify:\n  admin: console\n  charts: false\n"
    if server is not None:
        url = server.url_for("").rstrip("/")
        settings += f"sources:\n  treasury: {{base_url: '{url}', timeout: 5}}\n  fred: {{base_url: '{url}', timeout: 5}}\n"
    (cfg / "settings.yaml").write_text(settings)
    if tests_yaml is not None:
        (cfg / "rules.test.yaml").write_text(tests_yaml)
    return cfg


def serve_bomb(server, fallback_ok: bool):
    server.expect_request(TREASURY).respond_with_data(bomb(), headers={"Content-Encoding": "gzip"},
                                                      content_type="text/csv")
    if fallback_ok:
        server.expect_request("/graph/fredgraph.csv").respond_with_data(FRED_CSV, content_type="text/csv")
    else:
        server.expect_request("/graph/fredgraph.csv").respond_with_data(
            bomb(), headers={"Content-Encoding": "gzip"}, content_type="text/csv")


def gzip_bomb_then_fallback(tmp_path, server):
    serve_bomb(server, fallback_ok=True)
    return ["--config", str(config(tmp_path, server)), "fetch", "--series", "DGS10", "--since", "2024-07-01"], {}


def gzip_bomb_from_both(tmp_path, server):
    serve_bomb(server, fallback_ok=False)
    return ["--config", str(config(tmp_path, server)), "fetch", "--series", "DGS10", "--since", "2024-07-01"], {}


def data_dir_with(tmp_path, name: str, write) -> Path:
    """A copy of the real history with `name`.csv replaced by `write(path)`."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    for path in DATA.glob("*.csv"):
        (folder / path.name).write_bytes(path.read_bytes())
    target = folder / f"{name}.csv"
    target.unlink()
    write(target)
    return folder


def huge_csv(tmp_path, server):
    def write(path):  # 200 MB of well-formed rows' size, without writing them: a sparse file reads the same
        path.write_bytes((DATA / "IWM.csv").read_bytes())
        os.truncate(path, 200 * 1024 * 1024)
    folder = data_dir_with(tmp_path, "IWM", write)
    return ["check", "--date", "2024-07-11", "--data-dir", str(folder)], {}


def rows_out_of_range(tmp_path, server):
    def write(path):
        lines = (DATA / "IWM.csv").read_text().splitlines(keepends=True)
        path.write_text(lines[0] + "1600-01-03,10.0\n" + "".join(lines[1:]) + "2300-01-02,20.0\n9999-12-31,30.0\n")
    folder = data_dir_with(tmp_path, "IWM", write)
    return ["check", "--date", "2024-07-11", "--data-dir", str(folder)], {}


def cpi_released_before_its_month(tmp_path, server):
    def write(path):
        text = (DATA / "CPIAUCSL.csv").read_text()
        line = next(x for x in text.splitlines() if x.startswith("2024-06-01,"))
        path.write_text(text.replace(line, line.rsplit(",", 1)[0] + ",2024-05-20"))  # June, "released" in May
    folder = data_dir_with(tmp_path, "CPIAUCSL", write)
    return ["check", "--date", "2024-07-11", "--data-dir", str(folder)], {}


def subnormal_value(tmp_path, server):
    def write(path):
        text = (DATA / "SPY.csv").read_text()
        line = next(x for x in text.splitlines() if x.startswith("2024-07-09,"))
        path.write_text(text.replace(line, "2024-07-09,1e-320"))
    folder = data_dir_with(tmp_path, "SPY", write)
    return ["check", "--date", "2024-07-11", "--data-dir", str(folder)], {}


def rules_file(kind):
    def make(tmp_path, server):
        path = tmp_path / "rules.yaml"
        if kind == "/dev/zero":
            return ["validate", "--rules", "/dev/zero"], {}
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "sparse":
            path.write_bytes(b"rules: []\n")
            os.truncate(path, 1536 * 1024 * 1024)
        return ["validate", "--rules", str(path)], {}
    return make


def env_file(kind):
    def make(tmp_path, server):
        cfg = config(tmp_path)
        if kind == "sparse":
            (cfg / ".env").write_bytes(b"A=b\n")
            os.truncate(cfg / ".env", 1536 * 1024 * 1024)
        else:
            (cfg / ".env").write_bytes(b"TELEGRAM_BOT_TOKEN=\xff\xfe\n")
        return ["--config", str(cfg), "validate"], {}
    return make


def cli_date(*argv):
    def make(tmp_path, server):
        return [*argv, "--data-dir", str(DATA)], {}
    return make


def a_tests_file_dated_1600(tmp_path, server):
    cfg = config(tmp_path, tests_yaml="tests:\n  - rule: small-cap-trap\n    fires_within: [1600-01-03, 2024-07-19]\n")
    return ["--config", str(cfg), "validate"], {}


def rule_with(field, value):
    def make(tmp_path, server):
        path = tmp_path / "rules.yaml"
        rule = {"id": "r", "when": "IWM > 0", field: value}
        path.write_text("rules:\n" + "".join(f"    {k}: {v}\n" for k, v in rule.items()).replace("    ", "  - ", 1))
        return ["validate", "--rules", str(path)], {}
    return make


def home_is_a_file(tmp_path, server):
    home = tmp_path / "home-file"
    home.write_text("not a directory\n")
    return ["status"], {"CLOSEBELL_HOME": str(home)}


def database_url(url):
    def make(tmp_path, server):  # the password (s3cret) must never be shown: the expected line has none
        return ["status"], {"DATABASE_URL": url, "CLOSEBELL_HOME": str(tmp_path / "home")}
    return make


def store_from_another_build(tmp_path, server):
    """A store whose recorded version (5) lags a table it already holds (`overrides`, created at 6 by this
    build): what a development build that numbered its migrations differently leaves behind."""
    home = tmp_path / "home"
    home.mkdir()
    import sqlite3
    with sqlite3.connect(home / "closebell.db") as db:
        db.execute("CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '5')")
        db.execute("CREATE TABLE overrides (rule_id TEXT, param TEXT)")
    return ["status"], {"CLOSEBELL_HOME": str(home)}


def rules_tested_beside_a_store_from_another_build(tmp_path, server):
    """test-rules tests the rules file as written: no store is opened, whatever state the deployment's is in."""
    argv, env = store_from_another_build(tmp_path, server)
    return ["test-rules", "--data-dir", str(DATA)], env


def plot_to(path):
    def make(tmp_path, server):  # one rule over two months: the chart is drawn, then its write fails
        rules = tmp_path / "rules.yaml"
        rules.write_text("rules:\n  - id: r\n    when: IWM > 0\n")
        return ["backtest", "--rules", str(rules), "--from", "2024-06-01", "--to", "2024-07-31",
                "--data-dir", str(DATA), "--plot", path], {}
    return make


def line_of(name: str, day: str) -> int:
    """The line of the real file `name`.csv that holds `day` (a warning names it)."""
    lines = (DATA / f"{name}.csv").read_text().splitlines() if DATA.is_dir() else []
    return next((n for n, line in enumerate(lines, start=1) if line.startswith(day + ",")), 0)


IWM_LINES = len((DATA / "IWM.csv").read_text().splitlines()) if DATA.is_dir() else 0
P = "{tmp}"  # stands for the test's tmp_path in an expected line
OUT = "out of range; write a date between 1900-01-01 and 2199-12-31"

CASES = [
    # what, make, exit code, stderr lines (P = tmp_path; a line ending in '...' is a prefix)
    ("a gzip bomb from the primary source: capped unpacked, the fallback serves",
     gzip_bomb_then_fallback, 0, None),
    ("a gzip bomb from every source: one source error each, exit 3",
     gzip_bomb_from_both, 3, None),
    ("a 200 MB IWM.csv in --data-dir",
     huge_csv, 3,
     [f"error: {P}/data/IWM.csv: file is 209,715,200 bytes; at most 20,000,000 are read from a data file "
      "(the real histories are under 300 KB)"]),
    ("validate --rules /dev/zero", rules_file("/dev/zero"), 1,
     ["/dev/zero:1:1: is a device, not a regular file; give the path of a text file", "1 problem found"]),
    ("validate --rules on a FIFO (no writer: an open would hang)", rules_file("fifo"), 1,
     [f"{P}/rules.yaml:1:1: is a FIFO (named pipe), not a regular file; give the path of a text file",
      "1 problem found"]),
    ("validate --rules on a 1.5 GB sparse file", rules_file("sparse"), 1,
     [f"{P}/rules.yaml:1:1: file is 1,610,612,736 bytes; at most 1,000,000 are read", "1 problem found"]),
    ("a 1.5 GB .env", env_file("sparse"), 1,
     [f"{P}/cfg/.env:1:1: file is 1,610,612,736 bytes; at most 1,000,000 are read", "1 problem found"]),
    ("a .env that is not UTF-8", env_file("latin"), 1,
     [f"{P}/cfg/.env:1:1: not UTF-8 text (byte 19); save the file as UTF-8", "1 problem found"]),
    ("check --date 0001-01-01", cli_date("check", "--date", "0001-01-01"), 2,
     [f"error: --date 0001-01-01 is {OUT}"]),
    ("check --date 9999-12-31", cli_date("check", "--date", "9999-12-31"), 2,
     [f"error: --date 9999-12-31 is {OUT}"]),
    ("backtest --from 1600-01-03", cli_date("backtest", "--from", "1600-01-03"), 2,
     [f"error: --from 1600-01-03 is {OUT}"]),
    ("backtest --to 9999-12-31", cli_date("backtest", "--to", "9999-12-31"), 2,
     [f"error: --to 9999-12-31 is {OUT}"]),
    ("a tests file dated 1600-01-03", a_tests_file_dated_1600, 1,
     [f"{P}/cfg/rules.test.yaml:3:20: fires_within: 1600-01-03 is {OUT}", "1 problem found"]),
    ("CSV rows dated 1600, 2300 and 9999", rows_out_of_range, 0,
     [f"...{P}/data/IWM.csv:2: date 1600-01-03 is outside 1900-01-01..2199-12-31; dropped",
      f"...{P}/data/IWM.csv:{IWM_LINES + 2}: date 2300-01-02 is outside 1900-01-01..2199-12-31; dropped",
      f"...{P}/data/IWM.csv:{IWM_LINES + 3}: date 9999-12-31 is outside 1900-01-01..2199-12-31; dropped"]),
    ("a CPI row released before its own month", cpi_released_before_its_month, 0,
     [f"...{P}/data/CPIAUCSL.csv:{line_of('CPIAUCSL', '2024-06-01')}: 2024-06-01 released on 2024-05-20, before the period it describes; dropped "
      "(fix its release_date)"]),
    ("a value of 1e-320", subnormal_value, 0,
     [f"...{P}/data/SPY.csv:{line_of('SPY', '2024-07-09')}: 2024-07-09 value 9.99989e-321 is no market's number (subnormal, or beyond 1e+15); "
      "dropped"]),
    ("a rule title with CR/LF", rule_with("title", '"Rates\\r\\nBcc: someone@example.com"'), 1,
     [f"{P}/rules.yaml:4:12: 'title' holds the control character '\\r' (an email Subject cannot carry it: "
      "every send would fail); a title is one line of plain text: remove it", "1 problem found"]),
    ("a rule message with a NUL", rule_with("message", '"IWM at {IWM}\\0"'), 1,
     [f"{P}/rules.yaml:4:27: 'message' holds the control character '\\x00'; only line breaks and tabs may "
      "appear in a message: remove it", "1 problem found"]),
    ("a rule id with a line break", rule_with("id", '"r\\n"'), 1,
     [f"{P}/rules.yaml:2:9: 'id': String should match pattern '^[A-Za-z0-9_-]{{1,64}}$' (got 'r\\n')",
      "1 problem found"]),
    ("CLOSEBELL_HOME a regular file", home_is_a_file, 4,
     [f"error: CLOSEBELL_HOME={P}/home-file is a file, not a directory; point it at a directory (the store "
      "and its caches are kept there) or remove the file"]),
    ("DATABASE_URL with an unclosed IPv6 bracket", database_url("postgresql://bob:s3cret@[::1"), 4,
     ["error: DATABASE_URL cannot be used (its port is not a number; a host in brackets needs its closing ']'); "
      "write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE"]),
    ("DATABASE_URL without a scheme", database_url("bob:s3cret@db.example"), 4,
     ["error: DATABASE_URL cannot be used (it has no scheme such as postgresql://); "
      "write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE"]),
    ("a store written by another build (a table its version does not account for)", store_from_another_build, 4,
     [f"error: the store at {P}/home/closebell.db cannot be migrated from schema version 5 to 6 (table overrides "
      "already exists): it was written by a different build of Closebell; point CLOSEBELL_HOME or DATABASE_URL "
      "at another store"]),
    ("test-rules with --data-dir beside such a store: the file is tested, the store never opened",
     rules_tested_beside_a_store_from_another_build, 0, []),
    ("backtest --plot /nonexistent/x.png", plot_to("/nonexistent/x.png"), 2,
     ["error: --plot /nonexistent/x.png: the chart cannot be written (No such file or directory); give a path "
      "in a directory you can write to"]),
    ("backtest --plot /dev/full", plot_to("/dev/full"), 2,
     ["error: --plot /dev/full: the chart cannot be written (No space left on device); give a path in a "
      "directory you can write to"]),
]


@pytest.mark.parametrize("what, make, code, lines", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_input_is_one_clear_line(what, make, code, lines, tmp_path, httpserver):
    argv, env = make(tmp_path, httpserver)
    got, stderr, peak = cli(argv, env)
    assert not any("Traceback" in line or "Warning" in line for line in stderr), "\n".join(stderr)
    assert got == code, "\n".join(stderr)
    if "gzip bomb" in what:
        assert peak < RSS_LIMIT_MB, f"peak RSS {peak} MB"
        treasury = [line for line in stderr if "treasury" in line]
        assert treasury and "answered with more than 20,000,000 bytes (counted unpacked); refused" in treasury[0]
        if code != 0:
            assert any("fred" in line and "more than 20,000,000 bytes" in line for line in stderr), stderr
        return
    expected = [line.replace(P, str(tmp_path)) for line in lines]
    if any(line.endswith("...") or line.startswith("...") for line in expected):
        for line in expected:
            assert any(s.endswith(line[3:]) if line.startswith("...") else s == line for s in stderr), \
                f"{line!r} not in\n" + "\n".join(stderr)
    else:
        assert stderr == expected


def test_the_gzip_bomb_is_generated_as_described():
    packed = gzip_bomb(8 * 1024 * 1024)
    assert len(gzip.decompress(packed)) == 8 * 1024 * 1024 and len(packed) < 16 * 1024


def test_four_processes_opening_a_fresh_sqlite_store_at_once_create_the_schema_once(tmp_path):
    """Four processes opening a fresh SQLite store at once (a Procfile platform starting workers, a cron
    `check` beside `run`): one creates the schema, the others wait for it and find it made. Before the
    migration took SQLite's write lock first, about 1 trial in 4 ended in `table meta already exists`."""
    from bot.store.schema import VERSION
    opener = "from bot.store import open_store; print(open_store().version())"
    for trial in range(6):
        env = subprocess_env(CLOSEBELL_HOME=str(tmp_path / f"home{trial}"))
        procs = [subprocess.Popen([sys.executable, "-c", opener], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
        results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
        assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
        assert {out.strip() for _, out, _ in results} == {str(VERSION)}
