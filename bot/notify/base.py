"""What every notifier returns for each alert it was given."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str = ""
    permanent: bool = False  # retrying cannot help (bad token, unknown chat, refused address)
    retry_after: float | None = None  # the server asked to wait this many seconds


def split_text(text: str, limit: int) -> list[str]:
    """Split at line breaks (then spaces) so each piece fits `limit` characters."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:].lstrip()
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces
