"""`tune` as text: a preview's evidence before -> after, and each parameter with firings at nearby values."""

from __future__ import annotations

LAST = 3  # last firings shown before -> after


def _num(value) -> str:
    return "-" if value is None else f"{value:g}"


def _rate(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _share(value) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _dates(days) -> str:
    return ", ".join(d.isoformat() for d in days[-LAST:]) or "none"


def preview_lines(p) -> list[str]:
    """A TunePreview: the change, firings before -> after, forward returns and verdict, golden tests."""
    b, a = p.before, p.after
    span = f" over {b.span_from} .. {b.span_to}" if b.span_from else ""
    out = [f"Preview: {p.rule} {p.name} {_num(p.current)} → {_num(p.value)} "
           f"(now {_num(p.current)} from {p.source})",
           f"  firings a year: {_rate(b.per_year)} → {_rate(a.per_year)} ({b.firings} → {a.firings}{span})",
           f"  last firings before: {_dates(b.dates)}",
           f"  last firings after:  {_dates(a.dates)}"]
    fb, fa = b.forward.get(20), a.forward.get(20)
    if p.benchmark and fb is not None and fa is not None:
        way = "down" if p.direction == "down" else "up"
        out.append(f"  {p.benchmark} 20 sessions later: {_pct(fb.mean)} → {_pct(fa.mean)} on average "
                   f"(baseline {_pct(fb.baseline)}); {way} {_share(fb.hit_rate)} → {_share(fa.hit_rate)} "
                   f"of the time (baseline {_share(fb.baseline_hit_rate)})")
    if any(p.verdict):
        out.append(f"  20-session verdict: {p.verdict[0] or '-'} → {p.verdict[1] or '-'}")
    for dep, (n0, n1) in p.dependents.items():
        out.append(f"  {dep} (reads it through fired()): {n0} → {n1} firing(s)")
    for warning in p.warnings:
        out.append(f"  warning: {warning}")
    if p.tests_path is None:
        out.append("  golden tests: none (no rules.test.yaml beside the rules)")
    elif p.broken:
        out.append(f"  golden tests ({p.tests_path}): the change BREAKS {len(p.broken)} of "
                   f"{p.tests_total}:")
        out.extend(f"    {line}" for line in p.broken)
    else:
        out.append(f"  golden tests ({p.tests_path}): all {p.tests_total} still pass")
    out.extend(f"  now passes: {line}" for line in p.mended)
    return out


def param_line(view) -> str:
    """A ParamView: the value, where it comes from, firings a year at nearby values (the current in [])."""
    origin = "file" if view.source == "file" else f"phone override; file: {_num(view.file_value)}"
    near = ", ".join(f"[{_num(v)}: {_rate(r)}]" if v == view.value else f"{_num(v)}: {_rate(r)}"
                     for v, r in view.nearby)
    return f"{view.name} = {_num(view.value)} ({origin})\n  firings a year: {near}"


def overrides_lines(rows) -> list[str]:
    """`tune --list`: each override in force, with the file's value and who set it when."""
    return [f"{row.rule_id} {row.param} = {row.value:g} (file: {row.file_value:g}; set by {row.who} "
            f"{row.at:%Y-%m-%d %H:%M} UTC)" for row in rows] or ["no overrides: every rule runs as the file says"]


def history_lines(events) -> list[str]:
    """`tune --history`: every change, oldest first: applied, reset, file won, exported."""
    return [f"{e.at:%Y-%m-%d %H:%M} UTC  {e.kind:9} {e.rule_id} {e.param} {_num(e.previous)} -> "
            f"{_num(e.value)} (file: {_num(e.file_value)}) by {e.who}" for e in events] or ["no tuning yet"]
