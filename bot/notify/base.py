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


# -- units: what the outbox claims and sends together -----------------------------------------
#
# Every notifier may offer `units(alerts) -> list[list[int]]`: a partition of the
# indices of `alerts` (one recipient, one delivery) into the groups it sends as
# one message. The outbox claims the rows of one unit just before calling
# `send(recipient, [alerts of the unit], charts, record)`, so a kill mid-batch
# re-sends at most one message. A notifier without `units` sends each alert on
# its own.

def single_units(alerts) -> list[list[int]]:
    """Each alert its own unit (console, Telegram and apprise without grouping)."""
    return [[i] for i in range(len(alerts))]


def grouped_units(alerts, settings) -> list[list[int]]:
    """One unit for the alerts (not notices) when there are more than `group_above` of them, else one each.

    With `notify.grouping: false`, or `group_above` or fewer alerts, each alert is
    its own unit; notices (the bot's own messages) are never grouped.
    """
    groupable = [i for i, a in enumerate(alerts) if getattr(a, "kind", "alert") != "notice"]
    notify = getattr(settings, "notify", None)
    enabled = notify.grouping if notify is not None else True
    above = notify.group_above if notify is not None else 3
    if not enabled or len(groupable) <= above:
        return single_units(alerts)
    return [groupable] + [[i] for i in range(len(alerts)) if i not in groupable]
