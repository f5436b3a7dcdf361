"""`backtest` as text: per rule the verdict first, then its rate, forward returns against the unconditional
baseline with their intervals, and its last firings (every one, with its message, for `--all`).
"""

from __future__ import annotations

from collections.abc import Iterator

LAST = 5  # firings listed per rule without --all


def backtest_lines(result, every: bool = False) -> Iterator[str]:
    """The whole report, a line at a time (a 1,000-rule book is printed as it is rendered)."""
    yield f"Backtest {result.window_from} .. {result.window_to}, {len(result.reports)} rule(s)"
    for line in result.revised:  # once, before the rules it concerns
        yield f"note: {line}"
    for report in result.reports:
        yield ""
        yield from rule_lines(report, every)
        if report.rule in result.overrides:
            yield f"  ({result.overrides[report.rule]}; `closebell tune --list`)"


def rule_lines(report, every: bool) -> list[str]:
    direction = "predicts up" if report.direction == "up" else "predicts down"
    lines = [f"{report.rule} [{report.severity}, {direction}] {report.title}"]
    if report.evaluable_from is None:
        lines.append("  never evaluable: its series or windows are never all available")
        return lines
    # the verdict first: whether the figures below say anything at all (bot.engine.significance)
    lines.append("  verdict: " + "; ".join(f"{h} sessions: {s.verdict}"
                                           for h, s in sorted(report.forward.items(), reverse=True)))
    rate = f"{report.per_year:.2f} a year" if report.per_year is not None else "rate n/a"
    lines.append(f"  evaluable from {report.evaluable_from}; {report.firings} firing(s), {rate} "
                 f"over {report.span_from} .. {report.span_to}")
    for horizon, stats in report.forward.items():
        if stats.mean is None:
            lines.append(f"  {report.benchmark} {horizon} sessions later: no firing to measure")
            continue
        base = f"{stats.baseline:+.2f}%" if stats.baseline is not None else "n/a"
        hit = f"{stats.hit_rate * 100:.0f}%" if stats.hit_rate is not None else "n/a"
        base_hit = f"{stats.baseline_hit_rate * 100:.0f}%" if stats.baseline_hit_rate is not None else "n/a"
        lines.append(f"  {report.benchmark} {horizon} sessions later: {stats.mean:+.2f}% on average"
                     f"{_interval(stats.mean_interval, _pct)} vs {base} unconditional; {report.direction} {hit}"
                     f"{_interval(stats.hit_rate_interval, _share)} of the time vs {base_hit}")
    if not report.dates:
        return lines
    which = None if every else slice(-LAST, None)
    details = report.firing_details(which)
    if not every and report.firings > LAST:
        lines.append(f"  last {LAST} of {report.firings} firings (--all for every one):")
    for firing in details:
        fwd = ", ".join(f"{h}d {_pct(v)}" for h, v in firing.forward.items())
        lines.append(f"  {firing.date}  ({fwd})" + (f"  {firing.message}" if every else ""))
    return lines


def _pct(value):
    return "n/a" if value is None else f"{value:+.2f}%"


def _share(value):
    return f"{value * 100:.0f}%"


def _interval(pair, fmt) -> str:
    """' (90%: -0.12% .. +4.60%)': the interval of the figure before it, when there is one."""
    return "" if pair is None else f" (90%: {fmt(pair[0])} .. {fmt(pair[1])})"
