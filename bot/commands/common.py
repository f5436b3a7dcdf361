"""What several commands share: loading settings, opening the store, parsing dates."""

from __future__ import annotations

from datetime import date

from bot.errors import ClosebellError


class UsageError(ClosebellError):
    exit_code = 2


def parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date; write YYYY-MM-DD, e.g. 2024-07-11") from None


def series_and_settings():
    from bot.settings.load import load_series, load_settings
    return load_series(), load_settings()


def check_names(names, series_defs):
    from bot.settings.yamlfile import did_you_mean
    for name in names or []:
        if name not in series_defs:
            raise UsageError(f"unknown series '{name}'{did_you_mean(name, series_defs)} "
                             f"(known: {', '.join(series_defs)})")


def rules_path(args):
    from bot.settings.load import config_dir
    return getattr(args, "rules", None) or str(config_dir() / "rules.yaml")


def load_all(args):
    """(series definitions, settings, rules) or ConfigError with every problem."""
    from bot.engine.rules import load_rules
    series_defs, settings = series_and_settings()
    return series_defs, settings, load_rules(rules_path(args), series_defs)


def open_store_unless(data_dir):
    if data_dir:
        return None
    from bot.store import open_store
    return open_store()


def weekday(ts) -> str:
    return f"{ts:%Y-%m-%d} ({ts:%a})"
