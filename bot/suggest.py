"""Did-you-mean for names a user typed: series, functions, fields, rule ids, commands.

Every layer names things a user can misspell (the engine its functions, the settings their fields, the
app its rules, the chat adapter its commands), so the one copy lives beside bot/errors.py and
bot/clock.py, below all of them: each imports it from here, none through another layer.
"""

from __future__ import annotations

import difflib


def closest(word: str, choices) -> str | None:
    """The choice closest to `word` (spelling, then case), or None when none is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    if match:
        return match[0]
    lowered = {str(c).lower(): str(c) for c in choices}
    return lowered.get(str(word).lower())


def did_you_mean(word: str, choices) -> str:
    """'; did you mean 'x'?' when a choice is close to `word`, else ''."""
    match = closest(word, choices)
    return f"; did you mean '{match}'?" if match else ""
