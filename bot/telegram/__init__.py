"""The Telegram adapter: chat commands and alert buttons in, app calls, HTML replies out.

Only allow-listed chats (TELEGRAM_CHAT_IDS) are answered; the allow-list is
checked here and nowhere else. `handlers` turns one command into a reply (the
part worth testing); `poller` is the loop around it.
"""
