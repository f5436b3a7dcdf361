"""`backtest`: per rule, how often it fired and what followed, against the unconditional baseline.

The text report prints a summary per rule and its last firings (`--all`: every
firing, with its message); `--json` is compact and written rule by rule.
"""

from __future__ import annotations

import json
import sys

from bot.commands.common import build_app, parse_window, write_chart

LAST = 5


def run(args) -> int:
    start, end = parse_window(args)
    app = build_app(args)
    result = app.backtest(start, end)
    if args.plot:
        write_chart(args.plot, lambda buffer: app.plot_backtest(result, start, end, buffer))
    if args.json:
        write_json(result, args.pretty)
        return 0
    print(f"Backtest {result.window_from} .. {result.window_to}, {len(result.reports)} rule(s)")
    for line in result.revised:  # once, before the rules it concerns
        print(f"note: {line}")
    for report in result.reports:
        print()
        print("\n".join(rule_lines(report, args.all)))
        if report.rule in result.overrides:
            print(f"  ({result.overrides[report.rule]}; `closebell tune --list`)")
    return 0


def write_json(result, pretty: bool) -> None:
    """The result rule by rule, so a big rule book is never one string in memory."""
    if pretty:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = sys.stdout
    out.write(f'{{"from":{json.dumps(result.window_from)},"to":{json.dumps(result.window_to)},"rules":{{')
    for k, (report, text) in enumerate(result.rule_texts()):
        out.write(("," if k else "") + json.dumps(report.rule) + ":" + text)
    out.write("}" + (f',"revised":{json.dumps(result.revised)}' if result.revised else "") + "}\n")


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
