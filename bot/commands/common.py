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
