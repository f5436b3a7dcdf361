"""First-time set-up verbs that run before any configuration exists (`telegram-setup`).

They talk to the Telegram Bot API directly (bot.notify.telegram_setup); the CLI
reaches them through the app layer like every other verb.
"""

from bot.notify.telegram_setup import Chat, bot_username, env_file, wait_for_chats, write_chat_ids

__all__ = ["Chat", "bot_username", "env_file", "wait_for_chats", "write_chat_ids"]
