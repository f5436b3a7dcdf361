"""The bot's memory, and the only code that speaks SQL: SQLite by default, PostgreSQL by DATABASE_URL."""

from bot.store.lock import InstanceLock
from bot.store.store import Store, open_store

__all__ = ["InstanceLock", "Store", "open_store"]
