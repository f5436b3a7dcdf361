"""Plain-text renderings shared by the CLI and Telegram (which escapes them into HTML).

Adapters own their output; what both print the same way lives here, once.
"""

from __future__ import annotations

from bot.clock import ET


def status_lines(status) -> list[str]:
    lines = []
    run = status.last_run
    if run is not None:
        finished = f"{run.finished_at.astimezone(ET):%Y-%m-%d %H:%M %Z}" if run.finished_at else "not finished"
        late = " (late)" if run.late else ""
        lines.append(f"last run: {run.session} {run.status}{late}, {finished}")
        if run.detail:
            lines.append(f"  {run.detail}")
    else:
        lines.append("last run: none yet")
    lines.append(f"next run: {status.next_session:%Y-%m-%d} at {status.next_run_at:%H:%M %Z}")
    lines.append(f"store: {status.store}")
    instances = getattr(status, "instances", None)
    if instances is not None:  # PostgreSQL: who leads and who stands by, as the server sees it now
        if not any(i.role == "leader" for i in instances):
            lines.append("  leader: none (no `closebell run` holds the lock)")
        lines.extend(f"  {instance.line()}" for instance in instances)
    lines.append("data:")
    for s in status.series:
        via = ""
        if s.fetch_source:
            ok = "ok" if s.fetch_ok else f"FAILED: {s.fetch_message[:120]}"
            via = f" (last fetch {s.fetch_source}: {ok})"
        stale = f"  STALE: {s.stale}" if s.stale else ""
        lines.append(f"  {s.name:10} latest {s.latest or 'none'}{via}{stale}")
    counts = status.outbox
    claims = "; ".join(f"#{row.id} {claim_text(row)}" for row in status.claimed)
    more = "; ..." if claims and counts.get("sending", 0) > len(status.claimed) else ""
    lines.append(f"outbox: {counts.get('pending', 0)} pending, {counts.get('sending', 0)} sending"
                 f"{f' ({claims}{more})' if claims else ''}, "
                 f"{counts.get('failed', 0)} failed, {counts.get('sent', 0)} sent")
    for row in status.failed:
        lines.append(f"  failed: {row.session} {row.rule_id} to {row.channel}: {row.last_error[:120]}")
    if status.mutes:
        lines.append("muted: " + ", ".join(f"{r} until {u.astimezone(ET):%Y-%m-%d %H:%M}"
                                           for r, u in status.mutes.items()))
    for rule_id, note in getattr(status, "overrides", {}).items():
        lines.append(f"tuned: {rule_id} {note}")
    for channel in status.channels:
        lines.append(channel_line(channel))
    lines.append(trouble_line(status.channels))
    return lines


def claim_text(row) -> str:
    """Who is sending an outbox row and until when, or that its claim is over (sent by the next delivery)."""
    owner = row.owner or "a process before claims named theirs"
    if row.owner_gone:
        return f"{owner}: owner gone: sent on the next delivery"
    return f"{owner}, lease until {row.lease_until.astimezone(ET):%Y-%m-%d %H:%M:%S %Z}"


def channel_line(channel) -> str:
    """One channel as configured / not configured (and why), with the rules routed to it."""
    return f"channel {channel.line()}"


def trouble_line(channels) -> str:
    """Where the bot's own trouble goes (late or stale data, failed deliveries and runs): said wherever the
    channels are listed, so nobody learns it from a silent failure."""
    admin = next((c.channel for c in channels if c.admin), None)
    if admin is None:
        return ("trouble (late or stale data, failed deliveries or runs): the log only; configure Telegram, "
                "apprise or email, or set notify.admin in settings.yaml")
    return f"trouble (late or stale data, failed deliveries or runs): reported to {admin}"
