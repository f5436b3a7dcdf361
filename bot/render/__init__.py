"""The one home of what a user reads: results of the application core turned into lines of text.

The engine and the app return data (dataclasses with `to_json()` for `--json`);
every sentence a person reads is written here, once, and the CLI prints it
while the Telegram adapter escapes it into HTML and sends it. So `closebell
check` and `/check`, `explain` and the Why? button, can never tell a story
that differs in more than its layout. One module per kind of answer:

    status.py    status, the outbox's claims, channels and where trouble goes
    check.py     check: every rule as of one session (terminal and phone)
    explain.py   explain: why a rule fired or stayed quiet (terminal table)
    phone.py     explain for a phone: one sub-condition a line, 40 columns
    backtest.py  backtest: verdict, rates, forward returns, firings
    alerts.py    the rules overview and the last alerts (/rules, /last)

Nothing here evaluates, fetches or opens the store: a function takes a result
and returns lines.
"""
