"""`tune`: a rule's parameter from the terminal, with the same preview the phone gets.

    closebell tune small-cap-trap lead=6            # the preview: nothing changes
    closebell tune small-cap-trap lead=6 --apply    # applied: the next evaluation uses it
    closebell tune --list | --history | --export    # --export writes them into rules.yaml, comments kept
"""

from __future__ import annotations

import getpass

from bot.commands.common import build_app
from bot.errors import UsageError
from bot.render.tune import history_lines, overrides_lines, param_line, preview_lines

USAGE = "write RULE NAME=VALUE, e.g. closebell tune small-cap-trap lead=6 (or --list, --history, --export)"


def run(args) -> int:
    app = build_app(args)
    who = f"terminal:{_user()}"
    if args.list or args.history or args.export:
        if args.rule or args.setting:
            raise UsageError("--list, --history and --export take no rule; " + USAGE)
        if args.list:
            print("\n".join(overrides_lines(app.tune_list())))
        elif args.history:
            print("\n".join(history_lines(app.tune_history())))
        else:
            changes = app.tune_export(who)
            for change in changes:
                print(f"{app.config.rules_path}: {change.rule} {change.name}: {change.old:g} -> {change.new:g}")
            print(f"exported {len(changes)} override(s); cleared" if changes else "no overrides to export")
        return 0
    if not args.rule:
        raise UsageError(USAGE)
    if args.reset:
        if args.setting:
            raise UsageError("--reset takes RULE [NAME]")
        changes = app.tune_reset(args.rule, None, who)
        for change in changes:
            print("reset: " + change.line())
        if not changes:
            print(f"{args.rule} has no override")
        return 0
    if not args.setting:
        for view in app.tune_params(args.rule):
            print(param_line(view))
        return 0
    name, sep, value = args.setting.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"'{args.setting}': " + USAGE)
    preview = app.tune_preview(args.rule, name.strip(), value)
    print("\n".join(preview_lines(preview)))
    if args.apply:
        if preview.breaks and not args.break_tests:
            raise UsageError("the change breaks the golden tests above; add --break-tests to apply it anyway")
        print("applied: " + app.tune_apply(args.rule, name.strip(), value, who).line())
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: the terminal is enough to say
        return "?"
