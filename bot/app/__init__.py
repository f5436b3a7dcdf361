"""The application core: one object per deployment, one method per thing a user can ask.

`App` is built once from the configuration, a store, a clock and (for replays
and tests) a data directory, fetcher or notifiers. The CLI (`bot/commands`),
the Telegram adapter (`bot/telegram`), the daemon (`bot/daemon`) and replay all
call it and render what it returns: typed results (`bot.app.results`), never
printed text. So `/check` in Telegram and `closebell check` are one
computation rendered twice.
"""

from bot.app.core import App

__all__ = ["App"]
