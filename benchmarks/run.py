"""The performance table of issue 10, measured as a new user would: `make bench`.

    python benchmarks/run.py                 # every row, then the component benchmarks
    python benchmarks/run.py --quick         # fewer repetitions (a quick look, noisier)
    python benchmarks/run.py --only check --only sweep   # some rows (names: --list)

Every command row is a ratio to the *floor*: the cost of starting Python and
importing what evaluation needs, `python -c "import pandas, yaml,
exchange_calendars"`, measured in the same run. For each row the floor and the
command are run alternately (so a busy neighbour slows both alike), and the
medians are compared. Each child's peak RSS comes from wait4(2) (its own, not
the benchmark's); its CPU time (user+sys) is printed too, since wall time on a
shared machine is noisier. The idle daemon's memory is VmRSS from
/proc/PID/status once its log says it is waiting for the next close.

Why a row costs what it does: benchmarks/phases.py times one command's phases
in process (imports, YAML, CSV, calendar, frame, evaluation, report, JSON).

Everything it writes (rule books, truncated data, stores) goes to a temporary
directory that is removed at the end; the repository and the data directory
are only read.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

FLOOR = ["-c", "import pandas, yaml, exchange_calendars"]
CHECK_DAY = "2024-07-11"
SWEEP_RULE = "small-cap-trap"
TIMEOUT = 300  # seconds for any one child


# --- running one child ------------------------------------------------------------------------

@dataclass
class Sample:
    wall: float
    cpu: float  # user + sys of the child
    rss_mb: float  # the child's peak resident set
    rc: int
    stderr: str = ""


def run_child(args, env, timeout=TIMEOUT) -> Sample:
    """`python ARGS` from the project root; wall, CPU and peak RSS of that one process (wait4)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        err.seek(0)
        text = err.read().decode(errors="replace")
    rc = proc.returncode if wall < timeout else -9
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, rc, text)


@dataclass
class Result:
    name: str
    label: str
    goal: str = "-"
    samples: list = field(default_factory=list)
    floors: list = field(default_factory=list)
    note: str = ""  # "n/a (...)" or an error: the row is not measured
    ok: bool | None = None
    extra: str = ""
    command: str = ""

    def med(self, attr, which=None):
        values = [getattr(s, attr) for s in (self.samples if which is None else which)]
        return statistics.median(values) if values else float("nan")

    @property
    def seconds(self):
        return self.med("wall")

    @property
    def floor(self):
        return self.med("wall", self.floors)

    @property
    def ratio(self):
        return self.seconds / self.floor if self.floors else float("nan")

    @property
    def cpu_ratio(self):
        return self.med("cpu") / self.med("cpu", self.floors) if self.floors else float("nan")

    @property
    def rss(self):
        return max((s.rss_mb for s in self.samples), default=float("nan"))


def measure(result: Result, args, env, pairs: int, with_floor: bool = True, timeout: float = TIMEOUT,
            before=None) -> Result:
    """Alternate the floor and the command `pairs` times; stop at the first failure of the command.
    `before()` runs ahead of each run of the command (e.g. to empty its store)."""
    result.command = "python " + " ".join(_short(a) for a in args)
    for _ in range(pairs):
        if with_floor:
            result.floors.append(run_child(FLOOR, env))
        if before is not None:
            before()
        sample = run_child(args, env, timeout)
        if sample.rc == -9:
            result.note = f"timeout: stopped after {timeout:g} s"
            return result
        if sample.rc != 0:
            last = [line for line in sample.stderr.strip().splitlines() if line.strip()][-1:] or ["(no stderr)"]
            result.note = f"error rc={sample.rc}: {last[0][:90]}"
            return result
        result.samples.append(sample)
    return result


def _short(arg) -> str:
    """An argument as printed under the table: a long list of values as its count and ends."""
    text = str(arg)
    name, sep, values = text.partition("=")
    parts = values.split(",")
    if sep and len(parts) > 6:
        return f"{name}={','.join(parts[:3])},...,{parts[-1]}  ({len(parts)} values)"
    return text


def available(verb: str, env) -> bool:
    """Whether `python -m bot VERB` exists yet (the CLI says "invalid choice" otherwise)."""
    sample = run_child(["-m", "bot", verb, "--help"], env, timeout=60)
    return sample.rc == 0


# --- the fixtures: rule books, truncated data, configs -------------------------------------------

class Fixtures:
    def __init__(self, base: Path, data: Path):
        self.base, self.data = base, data
        self._made: dict = {}

    def book(self, count: int) -> Path:
        """A --config directory holding a `count`-rule book (benchmarks/rules_book.py)."""
        from rules_book import write_config
        key = ("book", count)
        if key not in self._made:
            self._made[key] = write_config(self.base / f"book-{count}", count)
        return self._made[key]

    def data_years(self, years: int) -> Path:
        """Copies of the CSVs holding only the last `years` years before the data's end."""
        import csv
        key = ("years", years)
        if key in self._made:
            return self._made[key]
        out = self.base / f"data-{years}y"
        out.mkdir()
        end = data_end(self.data)
        cutoff = f"{int(end[:4]) - years}{end[4:]}"
        for path in sorted(self.data.glob("*.csv")):
            with path.open(newline="") as src, (out / path.name).open("w", newline="") as dst:
                reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
                writer.writerow(next(reader))
                writer.writerows(row for row in reader if row and row[0] >= cutoff)
        self._made[key] = out
        return out

    def sweep_config(self) -> tuple[Path, str, list[float]]:
        """The shipped rules with SWEEP_RULE's first threshold as a parameter (unless it has one already);
        the parameter's name and 100 values around the shipped one."""
        import re
        import yaml
        out = self.base / "sweep"
        out.mkdir(exist_ok=True)
        for name in ("series.yaml", "settings.yaml"):
            shutil.copy(ROOT / "config" / name, out / name)
        doc = yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())
        rule = next(r for r in doc["rules"] if r["id"] == SWEEP_RULE)
        if rule.get("params"):
            name, value = next(iter(rule["params"].items()))
        else:
            match = re.search(r"(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)", rule["when"])
            name, value = "p0", float(match.group(2))
            rule["when"] = rule["when"][:match.start(2)] + name + rule["when"][match.end(2):]
            rule["params"] = {name: value}
        (out / "rules.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=200))
        span = abs(float(value)) or 1.0
        values = [round(span * 0.5 + span * k / 100, 4) for k in range(100)]
        return out, name, values

    def offline_config(self, charts: bool = False) -> Path:
        """Every series from DATA/NAME.csv (no network), charts off unless asked: a `run` a benchmark can start."""
        import yaml
        out = self.base / ("offline-charts" if charts else "offline")
        out.mkdir(exist_ok=True)
        series = yaml.safe_load((ROOT / "config" / "series.yaml").read_text())["series"]
        lines = ["series:"]
        for name, spec in series.items():
            lines.append(f"  {name}: {{source: csv, frequency: {spec.get('frequency', 'daily')}, "
                         f"units: {spec.get('units', 'price')}}}")
        (out / "series.yaml").write_text("\n".join(lines) + "\n")
        (out / "settings.yaml").write_text(f"sources:\n  csv: {{base_url: '{self.data}'}}\nnotify:\n  charts: {str(charts).lower()}\n")
        shutil.copy(ROOT / "config" / "rules.yaml", out / "rules.yaml")
        return out


    def burst_config(self, count: int, charts: bool) -> Path:
        """`count` rules that all fire on CHECK_DAY (IWM +3.6%; thresholds 0 to 1.5%, cooldown 0), severities
        in turn, each charting IWM, SPY and DGS10; Telegram unpaced: the many-alerts-at-once evening."""
        import yaml
        out = self.base / f"burst-{count}-{'charts' if charts else 'plain'}"
        out.mkdir(exist_ok=True)
        shutil.copy(ROOT / "config" / "series.yaml", out / "series.yaml")
        (out / "settings.yaml").write_text(f"notify:\n  charts: {str(charts).lower()}\n  telegram_pace_seconds: 0\n")
        severities = ("info", "warning", "critical")
        rules = [{"id": f"burst-{k}", "title": f"IWM up at least {k / 200:.3f}% on the day",
                  "when": f"pct_change(IWM, 1) >= {k / 200:g}", "cooldown": 0, "severity": severities[k % 3],
                  "chart": ["IWM", "SPY", "DGS10"]} for k in range(count)]
        (out / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False, width=200))
        return out


def data_end(data: Path) -> str:
    with (data / "IWM.csv").open() as f:
        last = f.readlines()[-1]
    return last.split(",")[0]


def child_env(home: Path, data: Path) -> dict:
    """The environment of a new user's shell: this checkout importable, its own state dir, no channels."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), CLOSEBELL_HOME=str(home), CLOSEBELL_DATA_DIR=str(data),
               PYTHONPYCACHEPREFIX=str(home / "pycache"))  # compiled once by the warm-up, as on a user's machine
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in list(env):
        if name.startswith(("TELEGRAM_", "SMTP_", "EMAIL_", "APPRISE_")) or name in (
                "CLOSEBELL_CONFIG", "HEARTBEAT_URL", "DATABASE_URL"):
            env.pop(name)
    return env


# --- the rows -----------------------------------------------------------------------------------

def ratio_goal(result: Result, limit: float) -> Result:
    result.goal = f"<= {limit:g}x"
    result.ok = result.ratio <= limit
    return result


def seconds_goal(result: Result, limit: float) -> Result:
    result.goal = f"< {limit:g} s"
    result.ok = result.seconds < limit
    return result


class Bench:
    def __init__(self, args, base: Path, data: Path):
        self.args, self.base, self.data = args, base, data
        self.fix = Fixtures(base, data)
        self.env = child_env(base / "home", data)
        self.pairs = 2 if args.quick else 5
        self.long_pairs = 1 if args.quick else 3
        self.results: dict[str, Result] = {}

    def backtest(self, name, label, config: Path, data: Path, pairs) -> Result:
        return measure(Result(name, label), ["-m", "bot", "--config", config, "backtest", "--json",
                                             "--data-dir", data], self.env, pairs)

    # each row: (name, method); the order is the table's
    def row_backtest(self):
        r = self.backtest("backtest", "backtest --json, 100 rules, all history", self.fix.book(100), self.data,
                          self.pairs)
        return ratio_goal(r, 1.5)

    def row_check(self):
        r = measure(Result("check", f"check --date {CHECK_DAY}, shipped rules"),
                    ["-m", "bot", "check", "--date", CHECK_DAY, "--data-dir", self.data], self.env, self.pairs)
        return ratio_goal(r, 1.2)

    def _replay(self, name, label, start, end, pairs, timeout=TIMEOUT):
        # --fresh starts each run from an empty replay store; the state directory (and its calendar cache)
        # is the one every other row uses, as it is for a user who has run any command before
        return measure(Result(name, label), ["-m", "bot", "replay", "--data-dir", self.data, "--from", start,
                                             "--to", end, "--fresh"], self.env, pairs, timeout=timeout)

    def row_replay(self):
        return ratio_goal(self._replay("replay", "replay 2024 (252 sessions)", "2024-01-01", "2024-12-31",
                                       self.long_pairs), 10)

    def row_replay_long(self):
        end = data_end(self.data)
        # stopped at 3x the goal, so `make bench` stays a few minutes even when the row misses badly
        return seconds_goal(self._replay("replay-long", f"replay 2008-01-01..{end}", "2008-01-01", end, 1,
                                         timeout=90), 30)

    def row_sweep(self):
        result = Result("sweep", f"sweep {SWEEP_RULE}, 100 values, all history")
        if not available("sweep", self.env):
            result.note = "n/a (command not available)"
            return result
        config, name, values = self.fix.sweep_config()
        measure(result, ["-m", "bot", "--config", config, "sweep", SWEEP_RULE,
                         f"{name}={','.join(f'{v:g}' for v in values)}", "--data-dir", self.data, "--json"],
                self.env, self.pairs)
        return ratio_goal(result, 2)

    def row_test_rules(self):
        result = Result("test-rules", "test-rules, shipped pack")
        if not available("test-rules", self.env):
            result.note = "n/a (command not available)"
            return result
        measure(result, ["-m", "bot", "test-rules", "--data-dir", self.data], self.env, self.pairs)
        return ratio_goal(result, 1.5)

    def row_idle_run(self):
        return self.idle(Result("idle-run", "idle `run` after catch-up: VmRSS", goal="< 120 MB"),
                         self.fix.offline_config(), ["--no-commands"], dict(self.env))

    def row_idle_run_live(self):
        """As a user runs it: Telegram on (a local stand-in of the Bot API) and its commands answered. The
        catch-up's session jobs run in child processes that exit (bot.daemon.child); the same daemon with
        `--in-process` is measured beside it. No goal of the issue's table: it measured the offline daemon."""
        sys.path.insert(0, str(ROOT))
        from tests.telegram_stub import TelegramStub

        stub = TelegramStub()
        stub.long_poll = True
        stub.start()
        try:
            env = dict(self.env, TELEGRAM_BOT_TOKEN=stub.token, TELEGRAM_CHAT_IDS="1001", TELEGRAM_BASE_URL=stub.url)
            config = self.fix.offline_config(charts=True)
            inside = self.idle(Result("idle-run-live-in-process", "x"), config, ["--in-process"], env)
            result = self.idle(Result("idle-run-live", "idle `run`, Telegram on, commands answered: VmRSS"),
                               config, [], env)
        finally:
            stub.stop()
        result.ok = None
        result.extra += f"; with --in-process {inside.extra.split(' (')[0].removeprefix('VmRSS ')}"
        return result

    def idle(self, result: Result, config: Path, options: list[str], env: dict) -> Result:
        """Start `run`, wait for catch-up to finish, read the daemon's VmRSS 5 s later, stop it."""
        home = self.base / f"{result.name}-home"
        env = dict(env, CLOSEBELL_HOME=str(home))
        args = ["-m", "bot", "--config", config, "run", *options]
        result.command = "python " + " ".join(map(str, args)) + "  (VmRSS 5 s after 'running; next job for')"
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        ready = threading.Event()

        def read():
            for line in proc.stderr:
                lines.append(line)
                if "running; next job for" in line:
                    ready.set()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not ready.wait(TIMEOUT):
                result.note = "error: never reached 'running; next job for': " + "".join(lines[-1:]).strip()[:80]
                return result
            took = time.perf_counter() - start
            time.sleep(5)
            status = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
            rss, hwm = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        result.samples.append(Sample(took, 0.0, rss, proc.returncode))
        result.extra = f"VmRSS {rss:.0f} MB (peak VmHWM {hwm:.0f} MB), up in {took:.1f} s, exit {proc.returncode}"
        result.ok = rss < 120
        return result

    def row_alerts_300(self):
        """Issue 16: 300 alerts firing at once, charts on, through the Telegram stand-in (grouped: one message,
        one chart). `check --send` into an empty store each run; the same with charts off beside it."""
        sys.path.insert(0, str(ROOT))
        from tests.telegram_stub import TelegramStub

        stub = TelegramStub().start()
        home = self.base / "alerts-home"
        env = dict(self.env, CLOSEBELL_HOME=str(home), TELEGRAM_BOT_TOKEN=stub.token, TELEGRAM_CHAT_IDS="1001",
                   TELEGRAM_BASE_URL=stub.url)

        def fresh():  # an empty store; the state directory's calendar cache stays, as for any user
            for path in home.glob("closebell.db*"):
                path.unlink()

        def args(charts):
            return ["-m", "bot", "--config", self.fix.burst_config(300, charts), "check", "--date", CHECK_DAY,
                    "--data-dir", self.data, "--send"]
        try:
            plain = measure(Result("alerts-300-plain", "x"), args(False), env, self.long_pairs, with_floor=False,
                            before=fresh)
            result = measure(Result("alerts-300", "check --send, 300 alerts at once, charts on (Telegram)"),
                             args(True), env, self.pairs, before=fresh)
            photos = len(stub.sent("sendPhoto"))
        finally:
            stub.stop()
        runs = len(result.samples)
        result.extra = (f"charts off: {plain.seconds:.2f} s; {photos} photo(s) in {runs} run(s)" if not plain.note
                        else f"charts off: {plain.note}")
        return seconds_goal(result, 5)

    def row_help(self):
        r = measure(Result("help", "python -m bot --help"), ["-m", "bot", "--help"], self.env, self.pairs)
        return seconds_goal(r, 0.3)

    # -- scale ---------------------------------------------------------------------------------
    def _scale_rules(self, count):
        if count == 100 and "backtest" in self.results and not self.results["backtest"].note:
            first = self.results["backtest"]  # the same command: its figures, not a second measurement
            return Result("rules-100", first.label, samples=first.samples, floors=first.floors,
                          command=first.command)
        pairs = self.long_pairs if count >= 1000 else self.pairs
        return self.backtest(f"rules-{count}", f"backtest --json, {count} rules, all history", self.fix.book(count),
                             self.data, pairs)

    def row_rules_10(self):
        return self._scale_rules(10)

    def row_rules_100(self):
        return self._scale_rules(100)

    def row_rules_1000(self):
        r = self._scale_rules(1000)
        r.goal = "<= 3x, < 300 MB"
        r.ok = r.ratio <= 3 and r.rss < 300
        return r

    def _scale_years(self, years):
        return self.backtest(f"years-{years}", f"backtest --json, 100 rules, last {years} years",
                             self.fix.book(100), self.fix.data_years(years), self.pairs)

    def row_years_5(self):
        return self._scale_years(5)

    def row_years_10(self):
        return self._scale_years(10)

    def row_years_26(self):
        return self._scale_years(26)


TABLE = ["backtest", "check", "replay", "replay-long", "sweep", "test-rules", "idle-run", "idle-run-live", "alerts-300",
         "help"]
SCALE = ["rules-10", "rules-100", "rules-1000", "years-5", "years-10", "years-26"]
# The component benchmarks (one process each, their own figures): in-process costs behind the rows.
COMPONENTS = {
    "engine": ["bench_engine.py"],
    "store-sqlite": ["bench_store.py", "sqlite"],
    "store-postgresql": ["bench_store.py", "postgresql"],
    "delivery": ["bench_delivery.py"],
    "daemon-job": ["bench_daemon.py"],
}


def fmt_row(r: Result) -> str:
    if r.note:
        return f"| {r.label} | {r.note} | | | | {r.goal} | {'MISS' if r.note.startswith(('error', 'timeout')) else '-'} |"
    if r.name.startswith("idle-run"):
        verdict = "-" if r.ok is None else ("ok" if r.ok else "MISS")
        return f"| {r.label} | {r.extra} | | | | {r.goal} | {verdict} |"
    floor = f"{r.floor:.2f}" if r.floors else "-"
    ratio = f"{r.ratio:.2f}x" if r.floors else "-"
    cpu = f"{r.cpu_ratio:.2f}x" if r.floors else "-"
    verdict = "-" if r.ok is None else ("ok" if r.ok else "MISS")
    return (f"| {r.label} | {r.seconds:.2f} | {floor} | {ratio} | {cpu} | {r.rss:.0f} MB | {r.goal} | {verdict} |"
            f"{'' if len(r.samples) > 1 else ' (1 run)'}{f' {r.extra}' if r.extra else ''}")


def header() -> str:
    head = "| row | median s | floor s | ratio (wall) | ratio (CPU) | peak RSS | goal | |"
    return head + "\n|---|---|---|---|---|---|---|---|"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="ROW",
                        help="run only this row (repeatable, or comma-separated); --list shows the names")
    parser.add_argument("--quick", action="store_true", help="2 pairs per row (1 for the long ones), no components")
    parser.add_argument("--list", action="store_true", help="list the row names and exit")
    parser.add_argument("--no-components", action="store_true", help="skip the component benchmarks")
    args = parser.parse_args(argv)
    names = TABLE + SCALE + list(COMPONENTS)
    if args.list:
        print("\n".join(names))
        return 0
    only = [n for spec in args.only or [] for n in spec.split(",") if n]
    unknown = [n for n in only if n not in names]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; rows: {', '.join(names)}")
    from _common import data_dir
    data = data_dir()
    base = Path(tempfile.mkdtemp(prefix="closebell-bench-"))
    started = time.perf_counter()
    load = os.getloadavg()
    print(f"closebell benchmark: {platform.node()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
          f"load average {load[0]:.2f} at start; data {data} (to {data_end(data)}); "
          f"{'quick' if args.quick else 'full'} run")
    try:
        bench = Bench(args, base, data)
        run_child(FLOOR, bench.env)  # warm the page cache and bytecode before anything counts
        run_child(["-m", "bot", "check", "--date", CHECK_DAY, "--data-dir", data], bench.env)
        for title, group in (("Issue 10 table", TABLE), ("Scale: backtest --json by rules and by years", SCALE)):
            chosen = [n for n in group if not only or n in only]
            if not chosen:
                continue
            print(f"\n{title}\n{header()}", flush=True)
            for name in chosen:
                result = getattr(bench, "row_" + name.replace("-", "_"))()
                bench.results[name] = result
                print(fmt_row(result), flush=True)
        measured = [r for r in bench.results.values() if r.command]
        if measured:
            print("\nCommands (from the project root; DATA is the data directory, CONFIG a temporary copy):")
            seen = set()
            for r in measured:
                if r.command in seen:
                    continue
                seen.add(r.command)
                print(f"  {r.name}: {r.command.replace(str(data), 'DATA').replace(str(base), 'TMP')}")
            print(f"  floor: python {FLOOR[0]} '{FLOOR[1]}'")
        components = [n for n in COMPONENTS if (n in only) or (not only and not args.quick and not args.no_components)]
        for name in components:
            print(f"\ncomponent: {name}", flush=True)
            code = subprocess.run([sys.executable, HERE / COMPONENTS[name][0], *COMPONENTS[name][1:]], cwd=HERE,
                                  env=dict(bench.env, CLOSEBELL_HOME=str(base / f"component-{name}"))).returncode
            if code:
                print(f"component {name}: failed (exit {code})")
        misses = [r.name for r in bench.results.values() if r.ok is False or r.note.startswith(("error", "timeout"))]
        print(f"\n{len(bench.results)} row(s) in {time.perf_counter() - started:.0f} s; load average "
              f"{os.getloadavg()[0]:.2f} at the end (a shared machine inflates wall time: compare the CPU ratio); "
              f"missed: {', '.join(misses) or 'none'}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
