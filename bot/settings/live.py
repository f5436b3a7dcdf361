"""Rules and settings re-read at each job and when the files change; the last good ones kept.

An invalid edit never stops the bot: it keeps evaluating the last rules that
validated, and reports the problems (file:line) to the admin channel once per
distinct mistake.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError
from bot.settings import cache as config_cache
from bot.settings.paths import config_dir as default_dir

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    series: dict
    settings: object
    rules: list
    # the rules in force: rule id -> {param: bot.store.overrides.Override} bound into `rules` (bot.app.tune);
    # empty for the file as read
    overrides: dict = field(default_factory=dict)


class LiveConfig:
    @classmethod
    def at(cls, config_dir: str | Path | None = None, rules_path: str | Path | None = None) -> "LiveConfig":
        """The configuration in `config_dir` (default: bot.settings.paths.config_dir()), rules file default
        CONFIG/rules.yaml."""
        directory = Path(config_dir) if config_dir else default_dir()
        return cls(rules_path or directory / "rules.yaml", directory)

    def __init__(self, rules_path: str | Path, config_dir: str | Path, on_problem=None):
        self.rules_path = Path(rules_path)
        self.config_dir = Path(config_dir)
        self.on_problem = on_problem  # called with (key, text) for each new invalid edit
        self.current: Loaded | None = None
        self._stamp = None
        self.last_error: str | None = None

    def files(self) -> list[Path]:
        return [self.config_dir / "series.yaml", self.config_dir / "settings.yaml", self.rules_path]

    def stamp(self):
        out = []
        for path in self.files():
            try:
                stat = path.stat()
                out.append((str(path), stat.st_mtime_ns, stat.st_size))
            except FileNotFoundError:
                out.append((str(path), None, None))
        return tuple(out)

    def base(self):
        """(series, settings) without the rules: for verbs that never evaluate (fetch, notify-test, sources),
        so a broken rules file does not stop them. The current good ones when loaded, else read now."""
        if self.current is not None:
            return self.current.series, self.current.settings
        from bot.settings.load import load_series, load_settings  # deliberately lazy: pydantic, see _read
        return load_series(self.config_dir / "series.yaml"), load_settings(self.config_dir / "settings.yaml")

    def get(self) -> Loaded:
        """The current good configuration, reloading first if a file changed."""
        self.reload()
        if self.current is None:
            raise ConfigError(self.last_error or "no valid configuration")
        return self.current

    def _read(self):
        """(series, settings, rules) from the files, or from the cache of the last good read of these same
        bytes (bot.settings.cache); a configuration is cached only after it validated."""
        files = self.files()
        wanted = config_cache.key(files)
        cached = config_cache.load(files, wanted)
        if cached is not None:
            return cached
        # pydantic and the models (~80 ms) only when the files changed since the last read:
        from bot.settings.load import load_series, load_settings  # deliberately lazy: see above
        from bot.settings.rules_file import load_rules  # deliberately lazy: see above
        series = load_series(self.config_dir / "series.yaml")
        settings = load_settings(self.config_dir / "settings.yaml")
        rules = load_rules(self.rules_path, series)
        if config_cache.key(files) == wanted:  # not edited while being read
            config_cache.store(files, wanted, (series, settings, rules))
        return series, settings, rules

    def reload(self) -> bool:
        """Re-read the files if they changed. Returns True when new rules took effect."""
        stamp = self.stamp()
        if stamp == self._stamp and self.current is not None:
            return False
        self._stamp = stamp
        try:
            series, settings, rules = self._read()
        except ConfigError as exc:
            text = str(exc)
            self.last_error = text
            if self.current is None:
                raise
            log.error("configuration invalid; keeping the last good rules:\n%s", text)
            if self.on_problem:
                key = hashlib.sha256(text.encode()).hexdigest()[:16]
                self.on_problem(f"config:{key}", "Your edit to the Closebell configuration is invalid; the bot "
                                                 f"keeps running the last good rules.\n{text}")
            return False
        changed = self.current is not None
        self.current = Loaded(series, settings, rules)
        self.last_error = None
        if changed:
            log.info("configuration reloaded: %d rule(s)", len(rules))
        return True
