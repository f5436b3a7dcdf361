"""`sources`: which feed is broken, before an evening is missed. Exit 3 when a series has no working source."""

from __future__ import annotations

import re

from bot.commands.common import build_app, print_json
from bot.errors import SourceError


def run(args) -> int:
    checks = build_app(args, data_dir=None, needs_rules=False).sources(args.series, args.sessions)
    if args.json:
        print_json([{"series": c.series, "role": c.role, "source": c.source, "symbol": c.symbol, "rows": c.rows,
                     "last": c.last.isoformat() if c.last else None, "latency": round(c.latency, 3),
                     "error": c.error, "agree": c.agree, "note": c.note, "outage": c.outage or None}
                    for c in checks], args.pretty)
    else:
        print("\n".join(table(checks)))
        for c in checks:  # at most one: the outage is said once, after the rows it explains
            if c.outage:
                print(c.outage)
    dead = sorted({c.series for c in checks} - {c.series for c in checks if c.ok})
    if dead:
        raise SourceError("sources", f"no working source for {', '.join(dead)}")
    return 0


NOTE_LIMIT = 160  # characters of the note column; --json keeps the whole text
_URL = re.compile(r"\s*\(https?://[^)]*\)")  # the table has no room for the URL; the error keeps it in --json


def table(checks) -> list[str]:
    head = ["series", "role", "source", "symbol", "rows", "last", "latency", "agree", "note"]
    rows = [head]
    for c in checks:
        agree = {True: "yes", False: "NO", None: "-"}[c.agree]
        rows.append([c.series, c.role, c.source, c.symbol, str(c.rows), f"{c.last or '-'}", f"{c.latency:.2f}s",
                     agree, fit(_URL.sub("", c.error or c.note or ""), NOTE_LIMIT)])
    widths = [max(len(r[k]) for r in rows) for k in range(len(head) - 1)]
    return ["  ".join([cell.ljust(w) for cell, w in zip(r, widths)] + [r[-1]]).rstrip() for r in rows]


def fit(text: str, limit: int) -> str:
    """`text` cut to `limit` characters at a word boundary, marked with an ellipsis: a note cut mid-word
    ("conne") reads like a different error."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[:cut if cut > limit // 2 else limit - 1].rstrip(" ;,:(") + "…"
