"""`closebell` (or `python -m bot` in a checkout): a thin command line over the library.

The one place where exceptions become messages on stderr and exit codes:
0 ok, 1 configuration or rules invalid, 2 usage, 3 data or source failure,
4 store, 5 delivery, 130 interrupted (each class of bot.errors carries its
code). Heavy imports (pandas, matplotlib, telegram, sqlalchemy, pydantic,
yaml) happen inside the commands, so `--help` stays fast: this module imports
only the standard library and the light modules below at its top.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bot import __version__
from bot.errors import ClosebellError, ConfigError

COMMANDS = {}  # name -> (help, description with example, add_arguments, handler "module:function")


def command(name, help, example, handler):
    def register(add_arguments):
        COMMANDS[name] = (help, example, add_arguments, handler)
        return add_arguments
    return register


def _data_dir(p):
    p.add_argument("--data-dir", metavar="DIR",
                   help="read each series NAME from DIR/NAME.csv instead of its source (e.g. ../shared/data)")


def _rules(p):
    p.add_argument("--rules", metavar="PATH", help="rules file (default: CONFIG/rules.yaml)")


def _json(p):
    p.add_argument("--json", action="store_true", help="print JSON only (nothing else on stdout); compact")
    p.add_argument("--pretty", action="store_true", help="with --json: indent it for reading")


def _window(p, what="reported"):
    p.add_argument("--from", dest="from_", metavar="D", help=f"first day {what} (default: all data)")
    p.add_argument("--to", metavar="D", help=f"last day {what} (default: the latest data)")


@command("fetch", "fetch series into the local store",
         "closebell fetch                       # update every series\n"
         "  closebell fetch --series IWM DGS10 --since 2024-01-01\n"
         "  closebell fetch --data-dir ../shared/data   # load shipped history offline",
         "bot.commands.fetch:run")
def _fetch_args(p):
    p.add_argument("--series", nargs="+", metavar="NAME", help="only these series (default: all)")
    p.add_argument("--since", metavar="DATE", help="fetch from this date (YYYY-MM-DD), rewriting what changed")
    _data_dir(p)


@command("validate", "check the rules file (and its tests file) and report every problem at file:line:col",
         "closebell validate\n  closebell validate --rules config/rules.yaml --data-dir ../shared/data",
         "bot.commands.validate:run")
def _validate_args(p):
    _rules(p)
    p.add_argument("--data-dir", metavar="DIR",
                   help="also warn about rules that never fired, or thresholds never reached, over this history "
                        "(default: the stored history, when there is one)")


@command("check", "evaluate every rule as of one session and print what fires",
         "closebell check --data-dir ../shared/data --date 2024-07-11\n"
         "  closebell check --data-dir ../shared/data --json   # the latest session with data, as JSON",
         "bot.commands.check:run")
def _check_args(p):
    p.add_argument("--date", metavar="D", help="session to check (default: the latest session with data)")
    _rules(p)
    _data_dir(p)
    _json(p)
    p.add_argument("--all-values", dest="verbose_values", action="store_true",
                   help="show the values of rules that do not fire too")
    p.add_argument("--send", action="store_true",
                   help="deliver what fires through the outbox (never twice for the same rule and session)")


@command("backtest", "replay the rules over history: every firing, with forward returns",
         "closebell backtest --data-dir ../shared/data --from 2024-01-01 --to 2024-12-31\n"
         "  closebell backtest --data-dir ../shared/data --json --plot fires.png",
         "bot.commands.backtest:run")
def _backtest_args(p):
    _window(p)
    _rules(p)
    _data_dir(p)
    _json(p)
    p.add_argument("--all", action="store_true", help="list every firing with its message (default: the last 5)")
    p.add_argument("--plot", metavar="FILE.png", help="draw each rule's series with its firings marked")


@command("explain", "why a rule fired or stayed quiet on a session: every sub-condition with value and margin",
         "closebell explain small-cap-trap --date 2024-07-16 --data-dir ../shared/data\n"
         "  closebell explain risk-off-pivot --data-dir ../shared/data --json",
         "bot.commands.explain:run")
def _explain_args(p):
    p.add_argument("rule", metavar="RULE", help="the rule's id")
    p.add_argument("--date", metavar="D", help="session to explain (default: the latest session with data)")
    _rules(p)
    _data_dir(p)
    _json(p)


@command("sweep", "a rule's firings for each value of a parameter: pick a threshold before committing it",
         "closebell sweep small-cap-trap lead=3:7:1 --data-dir ../shared/data\n"
         "  closebell sweep small-cap-trap lead=4,5 rise=0,0.05 --holdout 2020-01-01 --data-dir ../shared/data "
         "--plot sweep.png",
         "bot.commands.sweep:run")
def _sweep_args(p):
    p.add_argument("rule", metavar="RULE", help="the rule's id (its `params:` name what can be swept)")
    p.add_argument("values", nargs="+", metavar="NAME=VALUES",
                   help="NAME=V1,V2,... or NAME=START:STOP:STEP (stop included); two names give a grid")
    _window(p, "counted")
    p.add_argument("--holdout", metavar="D", help="also show each row's figures before and after this date")
    _rules(p)
    _data_dir(p)
    _json(p)
    p.add_argument("--plot", metavar="FILE.png", help="draw firings per year against the value")


@command("test-rules", "check the rules against real days: the expectations in rules.test.yaml",
         "closebell test-rules --data-dir ../shared/data\n"
         "  closebell test-rules --tests config/rules.test.yaml --rules config/rules.yaml --data-dir ../shared/data",
         "bot.commands.test_rules:run")
def _test_rules_args(p):
    _rules(p)
    p.add_argument("--tests", metavar="PATH", help="tests file (default: rules.test.yaml beside the rules)")
    _window(p, "checked")
    _data_dir(p)
    _json(p)


@command("schema", "print the JSON Schema of the rules file (for YAML language servers)",
         "closebell schema > rules.schema.json\n"
         "  # then put '# yaml-language-server: $schema=rules.schema.json' atop rules.yaml",
         "bot.commands.schema:run")
def _schema_args(p):
    pass


@command("outbox", "list pending and failed deliveries; --retry sends them now",
         "closebell outbox\n  closebell outbox --retry",
         "bot.commands.outbox:run")
def _outbox_args(p):
    p.add_argument("--retry", action="store_true", help="send pending and failed deliveries now")
    p.add_argument("--all", action="store_true", help="list sent deliveries too")
    _json(p)


@command("notify-test", "send a sample alert with a chart through each configured channel",
         "closebell notify-test\n  closebell notify-test --channel telegram",
         "bot.commands.notify_test:run")
def _notify_test_args(p):
    p.add_argument("--channel", metavar="NAME", help="only this channel: console, telegram or email")


@command("run", "run the bot: a job after every NYSE close, catch-up, live rules, Telegram commands",
         "closebell run\n  closebell run --once     # catch up on missed sessions, then exit",
         "bot.commands.run:run")
def _run_args(p):
    _rules(p)
    p.add_argument("--once", action="store_true", help="catch up on missed sessions (at most catch_up_sessions), "
                                                       "then exit instead of waiting for the next close")
    p.add_argument("--no-commands", action="store_true", help="do not answer Telegram commands")
    p.add_argument("--in-process", action="store_true",
                   help="run each session's job inside the daemon, not in a child process that exits after it "
                        "(easier to debug; the daemon then keeps the job's memory between closes)")


@command("replay", "run the whole bot over history on a simulated clock: which alerts, which evening",
         "closebell replay --data-dir ../shared/data --from 2024-01-01 --to 2024-12-31",
         "bot.commands.replay_cmd:run")
def _replay_args(p):
    p.add_argument("--from", dest="from_", metavar="D", required=True, help="first session")
    p.add_argument("--to", metavar="D", required=True, help="last session")
    p.add_argument("--data-dir", metavar="DIR", required=True, help="history to replay: DIR/NAME.csv per series")
    _rules(p)
    p.add_argument("--fresh", action="store_true", help="forget a previous replay instead of resuming it")
    p.add_argument("--send", action="store_true",
                   help="deliver the alerts through the configured channels (Telegram, email, ...) too; by "
                        "default a replay prints them only and never messages anyone")


@command("sources", "try every series' primary and fallback source now: rows, last date, latency, agreement",
         "closebell sources\n  closebell sources --series IWM DGS10 --sessions 20",
         "bot.commands.sources:run")
def _sources_args(p):
    p.add_argument("--series", nargs="+", metavar="NAME", help="only these series (default: all)")
    p.add_argument("--sessions", type=int, default=10, metavar="N", help="how many recent sessions (default: 10)")
    _json(p)


@command("status", "last run, next run, data freshness per series, pending and failed deliveries",
         "closebell status",
         "bot.commands.status:run")
def _status_args(p):
    _rules(p)


@command("init", "write a starter configuration (rules, series, settings, .env template) into a directory",
         "closebell init                 # into your config directory, found later without flags\n"
         "  closebell init ./mybot        # then: closebell --config ./mybot validate",
         "bot.commands.init:run")
def _init_args(p):
    p.add_argument("dir", nargs="?", metavar="DIR",
                   help="where to write (default: your config directory, e.g. ~/.config/closebell); "
                        "existing files are kept")


@command("telegram-setup", "find your Telegram chat id: say hello to the bot, get TELEGRAM_CHAT_IDS",
         "closebell telegram-setup            # prints the chat ids that write to the bot\n"
         "  closebell telegram-setup --write    # and writes TELEGRAM_CHAT_IDS=... into .env",
         "bot.commands.telegram_setup:run")
def _telegram_setup_args(p):
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="seconds to wait for a message to the bot (default: 120)")
    p.add_argument("--write", action="store_true",
                   help="create or update the TELEGRAM_CHAT_IDS line in .env (nothing else in it changes)")
    p.add_argument("--env-file", metavar="PATH",
                   help="the file --write updates (default: ./.env, or CONFIG/.env when only that exists)")
    p.add_argument("--delete-webhook", action="store_true",
                   help="remove a webhook set on the bot first (getUpdates cannot be used while one is set)")


@command("tune", "a rule's parameter: preview firings, backtest and golden tests before -> after; --apply sets it",
         "closebell tune small-cap-trap lead=6 --data-dir ../shared/data           # the preview; nothing changes\n"
         "  closebell tune small-cap-trap lead=6 --apply --data-dir ../shared/data # used at the next evaluation\n"
         "  closebell tune --export                        # overrides into rules.yaml, comments kept",
         "bot.commands.tune:run")
def _tune_args(p):
    p.add_argument("rule", nargs="?", metavar="RULE", help="the rule's id (alone: its params and nearby values)")
    p.add_argument("setting", nargs="?", metavar="NAME=VALUE", help="the parameter and its new value")
    p.add_argument("--apply", action="store_true", help="apply it (kept in the store; the file wins if it changes)")
    p.add_argument("--break-tests", action="store_true", help="with --apply: even if a golden test then fails")
    p.add_argument("--reset", action="store_true", help="RULE back to the file's values")
    p.add_argument("--list", action="store_true", help="the overrides in force")
    p.add_argument("--history", action="store_true", help="every change: applied, reset, file won, exported")
    p.add_argument("--export", action="store_true",
                   help="write the overrides into the rules file in place (comments, order, layout kept), "
                        "then clear them")
    _rules(p)
    _data_dir(p)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only` a command's sub-parser alone (building every one costs ~10 ms)."""
    parser = argparse.ArgumentParser(
        prog="closebell",
        description="Closebell: after every NYSE close, check your market rules and alert your phone.",
        epilog="Run 'closebell COMMAND --help' for a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"closebell {__version__}")
    parser.add_argument("--config", metavar="DIR", help="settings directory (default: $CLOSEBELL_CONFIG or ./config)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (help_text, example, add_arguments, _handler) in COMMANDS.items():
        if only and name != only:
            continue
        p = sub.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}.",
                           epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(p)
    return parser


def named_command(argv: list[str]) -> str | None:
    """The command `argv` names, if it is one of ours: the first word that is not an option (or --config's value)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=named_command(argv))  # an unknown word gets the whole parser, and its error
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    # deliberately lazy: logging and pathlib (~30 ms) only once a command runs, not for --help
    from bot import logs
    from bot.settings import env  # deliberately lazy: pathlib, for the same reason
    base = 1 if args.command == "run" else 0  # the daemon's log lines are its record of every step
    logs.setup(["WARNING", "INFO", "DEBUG"][min(args.verbose + base, 2)])
    if args.config:
        os.environ["CLOSEBELL_CONFIG"] = args.config
    from bot.settings.paths import config_dir  # deliberately lazy: pathlib, as above
    module_name, _, function = COMMANDS[args.command][3].partition(":")
    try:
        env.load_dotenv()  # in the try: a .env that is refused (a FIFO, 1 GB, not UTF-8) is one line, exit 1
        env.load_dotenv(config_dir() / ".env")  # where `init` writes it; ./.env (read above) wins
        env.current()  # secrets and deployment settings validated once, at start-up: one line per bad value
        handler = getattr(importlib.import_module(module_name), function)
        code = handler(args) or 0
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # `closebell backtest | head`: the reader has all it wanted; end quietly, like cat(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return exc.exit_code
    except ClosebellError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
