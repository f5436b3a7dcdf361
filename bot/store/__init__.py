"""The bot's memory, and the only code that speaks SQL: SQLite by default, PostgreSQL by DATABASE_URL."""

from bot.store.store import Store, open_store

__all__ = ["Store", "open_store"]
