from __future__ import annotations

import json
import sys

from bot.commands.common import load_all, open_store_unless, parse_date, weekday


def resolve_session(prepared, rules, series_defs, day):
    """The session to report and a note when it is not the day asked for."""
    from bot.analysis import latest_session_with_data
    from bot.data import calendar
    if day is None:
        return latest_session_with_data(prepared, rules), None
    session = calendar.session_on_or_before(day)
    if session.date() != day:
        return session, f"{day} is not a NYSE session; using the last session before it, {session.date()}"
    return session, None


def rule_states(prepared, rules, session):
    """Every rule's state on `session`: the dict behind both the text and the JSON output."""
    ev = prepared.evaluation
    i = ev.frame.index_of(session)
    out = {}
    for rule in rules:
        holds = ev.holds[rule.id][i]
        out[rule.id] = {
            "title": rule.title, "severity": rule.severity,
            "fires": bool(ev.fires[rule.id][i]),
            "holds": None if holds != holds else bool(holds),
            "values": {k: (None if v != v else round(v, 6)) for k, v in ev.values(rule, i).items()},
            "message": ev.message(rule, i),
            "gaps": ev.gaps(rule, i),
        }
    return out


def run(args) -> int:
    from bot.analysis import prepare
    series_defs, settings, rules = load_all(args)
    day = parse_date(args.date, "--date")
    store = open_store_unless(args.data_dir)
    prepared = prepare(rules, series_defs, store=store, data_dir=args.data_dir, as_of=day)
    session, note = resolve_session(prepared, rules, series_defs, day)
    if note:
        print(f"note: {note}", file=sys.stderr)
    states = rule_states(prepared, rules, session)
    if args.send:
        from bot.pipeline import send_check
        report = send_check(prepared, rules, session, settings, store, series_defs)
        print(f"delivery: {report.line()}", file=sys.stderr)
        for failure in report.failed:
            print(f"failed: {failure}", file=sys.stderr)
    if args.json:
        print(json.dumps({"session": f"{session:%Y-%m-%d}", "note": note, "rules": states}, indent=2))
        return 0
    fired = [rid for rid, s in states.items() if s["fires"]]
    print(f"Session {weekday(session)}: {len(rules)} rule(s), {len(fired)} fire(s).")
    for rid, state in states.items():
        mark = "FIRES" if state["fires"] else ("holds" if state["holds"] else "quiet")
        print(f"\n{mark:5}  {rid} [{state['severity']}] {state['title']}")
        if state["fires"] or args.verbose_values:
            print(f"       {state['message']}")
        if state["gaps"]:
            print(f"       inputs: {'; '.join(state['gaps'])}")
    return 0
