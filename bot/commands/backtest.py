from __future__ import annotations

import json
import math
import sys

from bot.commands.common import load_all, open_store_unless, parse_date, UsageError

HORIZONS = (5, 20)


def summarize(prepared, rules, start, end):
    """Per rule: firings in the window and the forward returns after each."""
    from bot.engine.evaluate import forward_return
    ev = prepared.evaluation
    out = {}
    for rule in rules:
        daily = [s for s in rule.series if s in ev.frame.daily]
        target = rule.benchmark or (daily[0] if daily else None)
        fires = ev.fire_dates(rule.id, start, end)
        rows = []
        for session in fires:
            i = ev.frame.index_of(session)
            returns = {str(h): _clean(forward_return(ev.frame, target, i, h)) if target else None for h in HORIZONS}
            rows.append({"date": f"{session:%Y-%m-%d}", "forward_returns": returns, "message": ev.message(rule, i)})
        averages = {}
        for h in HORIZONS:
            known = [r["forward_returns"][str(h)] for r in rows if r["forward_returns"][str(h)] is not None]
            averages[str(h)] = round(sum(known) / len(known), 4) if known else None
        out[rule.id] = {"title": rule.title, "count": len(rows), "fires": [r["date"] for r in rows],
                        "benchmark": target, "average_forward_returns": averages, "firings": rows}
    return out


def _clean(value):
    return None if value is None or math.isnan(value) else round(value, 4)


def run(args) -> int:
    from bot.analysis import prepare
    series_defs, settings, rules = load_all(args)
    start, end = parse_date(args.from_, "--from"), parse_date(args.to, "--to")
    if start and end and start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    store = open_store_unless(args.data_dir)
    # Everything is computed over all data; the window only limits what is reported. Each day's answer
    # depends on data up to that day alone, and forward returns may look past --to.
    prepared = prepare(rules, series_defs, store=store, data_dir=args.data_dir)
    sessions = prepared.frame.sessions
    window = {"from": f"{max(sessions[0].date(), start) if start else sessions[0].date()}",
              "to": f"{min(sessions[-1].date(), end) if end else sessions[-1].date()}"}
    summary = summarize(prepared, rules, start, end)
    if args.plot:
        from bot.notify.charts import backtest_chart
        backtest_chart(prepared, rules, start, end, args.plot)
    if args.json:
        print(json.dumps({**window, "rules": summary}, indent=2))
        return 0
    print(f"Backtest {window['from']} .. {window['to']}, {len(rules)} rule(s)")
    for rid, s in summary.items():
        avg = ", ".join(f"{h}d {_pct(v)}" for h, v in s["average_forward_returns"].items())
        print(f"\n{rid}: {s['count']} firing(s); average forward return of {s['benchmark']}: {avg}")
        for row in s["firings"]:
            fr = ", ".join(f"{h}d {_pct(v)}" for h, v in row["forward_returns"].items())
            print(f"  {row['date']}  ({fr})")
    if args.plot:
        print(f"\nchart written to {args.plot}", file=sys.stderr)
    return 0


def _pct(value):
    return "n/a" if value is None else f"{value:+.2f}%"
