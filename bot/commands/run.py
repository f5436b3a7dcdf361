from __future__ import annotations

from bot.commands.common import rules_path


def build_runtime(args, store, fetch=None, notifiers=None):
    from bot.daemon.live_rules import LiveConfig
    from bot.notify.outbox import admin_notice
    from bot.pipeline import Runtime, live_fetch
    from bot.settings.load import config_dir
    config = LiveConfig(rules_path(args), config_dir())
    config.get()  # refuse to start on invalid configuration: exit 1 with every problem

    def report(key, text):
        admin_notice(store, config.current.settings, key, text)
    config.on_problem = report
    return Runtime(store=store, config=config, fetch=fetch or live_fetch, notifiers=notifiers)


def run(args) -> int:
    from bot.daemon.lock import InstanceLock
    from bot.daemon.runner import Daemon
    from bot.store import open_store
    store = open_store()
    runtime = build_runtime(args, store)
    daemon = Daemon(runtime, InstanceLock(store))
    if args.once:
        daemon.install_signal_handlers()
        if not daemon.lock.acquire():
            from bot.errors import StoreError
            raise StoreError("another instance holds the lock")
        try:
            store.outbox_recover()
            daemon.catch_up()
        finally:
            daemon.lock.release()
        return 0
    from bot.notify import configured
    if configured("telegram") and not args.no_commands:
        from bot.daemon.commands import CommandPoller
        daemon.commands = CommandPoller(runtime, daemon)
    daemon.run()
    return 0
