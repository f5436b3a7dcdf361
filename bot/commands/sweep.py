"""`sweep`: one row per parameter value — firings, rate, and what followed — to pick a threshold."""

from __future__ import annotations

import sys

from bot.commands.common import build_app, parse_date, parse_window, print_json, write_chart


def run(args) -> int:
    start, end = parse_window(args)
    holdout = parse_date(args.holdout, "--holdout")
    app = build_app(args)
    rows = app.sweep(args.rule, args.values, start, end, holdout)
    names = [spec.partition("=")[0].strip() for spec in args.values]
    if args.plot:
        write_chart(args.plot, lambda buffer: app.plot_sweep(args.rule, rows, names, buffer))
    check = rows.holdout  # with --holdout: the in-sample choice and what the holdout says of it
    if args.json:  # a list of rows; the notes, which concern them all, go to stderr once
        body = [row.to_json() for row in rows]
        if check is not None:
            chosen = next(b for b, row in zip(body, rows) if row.params == check.params)
            chosen["chosen_in_sample"] = True
            chosen["holdout_warning"] = check.warning
        print_json(body, args.pretty)
        for line in rows.revised:
            print(f"note: {line}", file=sys.stderr)
        if check is not None and check.warning:
            print(f"warning: {check.warning}", file=sys.stderr)
        return 0
    head = [*names, "firings", "per yr", "first", "last", "fwd5 mean (up)", "p5", "fwd20 mean (up)", "p20"]
    if holdout:
        head += ["before: n, /yr, fwd20, p", f"from {holdout}: n, /yr, fwd20, p"]
    table = [head]
    for row in rows:
        f = row.figures
        line = [f"{row.params[n]:g}" for n in names]
        line += [str(f.firings), _num(f.per_year), f"{f.first or '-'}", f"{f.last or '-'}",
                 _fwd(f, 5), _p(f, 5), _fwd(f, 20), _p(f, 20)]
        if holdout:
            line += [_brief(row.before), _brief(row.after)]
        table.append(line)
    widths = [max(len(r[k]) for r in table) for k in range(len(head))]
    for r in table:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths)).rstrip())
    if check is not None:
        print(check.describe(holdout))
        if check.warning:
            print(f"warning: {check.warning}")
    for line in rows.revised:
        print(f"note: {line}")
    return 0


def _num(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fwd(figures, horizon) -> str:
    stats = figures.forward.get(horizon)
    if stats is None or stats.mean is None:
        return "-"
    return f"{stats.mean:+.2f}% ({stats.positive * 100:.0f}%)"


def _p(figures, horizon) -> str:
    """The p-value against random timing, in the rule's direction (bot.engine.significance)."""
    stats = figures.forward.get(horizon)
    if stats is None or stats.p_value is None:
        return "-"
    return f"{stats.p_value:.3f}" if stats.p_value < 0.01 else f"{stats.p_value:.2f}"


def _brief(figures) -> str:
    if figures is None:
        return "-"
    stats = figures.forward.get(20)
    fwd = f"{stats.mean:+.2f}%" if stats and stats.mean is not None else "-"
    p = f" p={_p(figures, 20)}" if stats and stats.p_value is not None else ""
    return f"{figures.firings}, {_num(figures.per_year)}, {fwd}{p}"
