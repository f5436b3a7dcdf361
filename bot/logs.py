"""Log lines with timestamps in New York time, one line per step, secrets scrubbed."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from bot.clock import ET
from bot.settings.env import redact


class EasternFormatter(logging.Formatter):
    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's API
        return datetime.fromtimestamp(record.created, ET).strftime("%Y-%m-%d %H:%M:%S %Z")

    def format(self, record):
        return redact(super().format(record))


def setup(level: str = "WARNING") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EasternFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries whose own lines repeat what Closebell reports itself (a failed fetch names its source once).
    for noisy in ("urllib3", "yfinance", "peewee", "httpx", "httpcore", "telegram", "apscheduler.executors",
                  "apscheduler.scheduler", "matplotlib", "asyncio", "mail.log", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if noisy in ("urllib3", "yfinance") else
                                          max(logging.WARNING, logging.getLevelName(level)))
