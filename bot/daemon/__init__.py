"""`closebell run`: the scheduler, readiness wait, catch-up, instance lock, live rules, Telegram commands."""
