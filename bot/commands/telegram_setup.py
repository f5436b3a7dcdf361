"""`closebell telegram-setup`: find the chat id for TELEGRAM_CHAT_IDS, optionally write it to .env."""

from __future__ import annotations

from bot.app import setup


def run(args) -> int:
    username = setup.bot_username(delete_webhook=args.delete_webhook)
    if args.delete_webhook:
        print("Webhook removed.")
    print(f"Bot: @{username}")
    print(f"Now send @{username} any message in Telegram (or add it to a group and write there). "
          f"Waiting up to {args.timeout:g} s...", flush=True)
    chats = setup.wait_for_chats(args.timeout, username)
    print("Chats that wrote (id, type, name):")
    for chat in chats:
        print(f"  {chat.line()}")
    ids = [chat.id for chat in chats]
    if args.write:
        path = setup.env_file(args.env_file)
        line = setup.write_chat_ids(path, ids)
        print(f"Wrote {line} to {path}")
        print("Next: closebell notify-test")
    else:
        print(f"Put this line in .env (or run again with --write): TELEGRAM_CHAT_IDS={','.join(map(str, ids))}")
    return 0
