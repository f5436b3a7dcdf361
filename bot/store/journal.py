"""Sends that went out while the store could not record them: kept on local disk until it can.

When Telegram (or SMTP, ...) has accepted a message, it is out: the outbox row
must say `sent`, or a later delivery sends it again once the claim's lease
runs out. The delivery loop retries recording with backoff (a terminated
connection is replaced, see connect.py); when the store stays gone, it appends
the outcome here, one JSON line per row, flushed and fsynced before the
delivery carries on, so the outcome survives the process. The next delivery
(the next `check --send`, `outbox --retry`, the daemon's start or tick)
replays the file into the store before it recovers or sends anything, then
empties it.

One file per store, in the state directory beside the SQLite default
(`unrecorded-sends-<hash>.jsonl`, the hash of the store's URL without its
password), so a replay's store or another database never takes another's
outcomes. An exclusive `flock` while appending and replaying keeps two
processes on one host from losing a line between reading and emptying. A line
cut short by a crash mid-write is skipped (its row is at worst sent once more,
as without a journal).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path

from bot.settings.paths import state_dir

log = logging.getLogger(__name__)


class SendJournal:
    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def of(cls, store) -> "SendJournal":
        url = store.engine.url.render_as_string(hide_password=True)
        return cls(state_dir() / f"unrecorded-sends-{hashlib.sha256(url.encode()).hexdigest()[:12]}.jsonl")

    def append(self, row, sent_at: datetime) -> None:
        """Keep `row`'s sent outcome on disk (durable when this returns); OSError if the disk refuses."""
        line = json.dumps({"id": row.id, "sent_at": sent_at.isoformat(), "rule": row.rule_id,
                           "session": str(row.session), "channel": row.channel}) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)  # closing drops the flock

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def replay(self, store) -> int:
        """Record every kept outcome in `store`, then empty the file; how many rows were recorded.

        Marking a row sent is idempotent, so a replay cut short is simply run again. A StoreError (the
        store still gone) propagates with the file untouched."""
        if not self.pending():
            return 0
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r", encoding="utf-8") as handle:
                lines = handle.read().splitlines()
            entries = []
            for number, text in enumerate(lines, 1):
                try:
                    entry = json.loads(text)
                    entries.append((int(entry["id"]), datetime.fromisoformat(entry["sent_at"]), entry))
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: not a complete entry (cut short by a crash?); skipped", self.path, number)
            for row_id, sent_at, entry in entries:
                store.outbox.sent(row_id, sent_at)
                log.info("recorded %s %s to %s as sent (kept in %s while the store was gone)",
                         entry.get("session"), entry.get("rule"), entry.get("channel"), self.path)
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(entries)
