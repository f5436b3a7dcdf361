"""The bot's state in a few lines: shared by `python -m bot status` and Telegram's /status."""

from __future__ import annotations

from datetime import datetime

from bot.data.calendar import ET


def status_lines(store, loaded, now: datetime | None = None) -> list[str]:
    from bot.analysis import series_needed
    from bot.daemon.trigger import next_run
    now = now or datetime.now(ET)
    lines = []
    runs = store.runs_list(1)
    if runs:
        run = runs[0]
        from bot.store.store import stored_time
        finished = (stored_time(run.finished_at).astimezone(ET).strftime("%Y-%m-%d %H:%M %Z") if run.finished_at
                    else "not finished")
        late = " (late)" if run.late else ""
        lines.append(f"last run: {run.session} {run.status}{late}, {finished}")
        if run.detail:
            lines.append(f"  {run.detail}")
    else:
        lines.append("last run: none yet")
    session, when = next_run(now, loaded.settings.schedule.offset_minutes)
    lines.append(f"next run: {session:%Y-%m-%d} at {when:%H:%M %Z}")
    lines.append("data:")
    last_dates = store.last_dates()
    fetches = store.last_fetches()
    for name in series_needed(loaded.rules) or list(loaded.series):
        fetch = fetches.get(name)
        via = ""
        if fetch:
            ok = "ok" if fetch["ok"] else f"FAILED: {fetch['message'][:120]}"
            via = f" (last fetch {fetch['source']}: {ok})"
        lines.append(f"  {name:10} latest {last_dates.get(name, 'none')}{via}")
    counts = store.outbox_counts()
    lines.append(f"outbox: {counts.get('pending', 0)} pending, {counts.get('sending', 0)} sending, "
                 f"{counts.get('failed', 0)} failed, {counts.get('sent', 0)} sent")
    for row in store.outbox_rows(["failed"], limit=5):
        lines.append(f"  failed: {row.session} {row.rule_id} to {row.channel}: {row.last_error[:120]}")
    mutes = store.mutes(now)
    if mutes:
        lines.append("muted: " + ", ".join(f"{r} until {u.astimezone(ET):%Y-%m-%d %H:%M}" for r, u in mutes.items()))
    return lines
