"""`check` as text: every rule as of one session, for a terminal and for a phone.

The terminal lists every rule with its state (FIRES, holds, quiet) and why a
rule that holds sends nothing (cooldown, `for:`); the phone's `/check` leads
with the count and the firing rules' messages, and keeps only the gaps.
"""

from __future__ import annotations


def weekday(day) -> str:
    return f"{day:%Y-%m-%d} ({day:%a})"


def check_lines(result, values: bool = False) -> list[str]:
    """For a terminal: a header, then per rule its mark, id, severity and title; the message when it fires
    (every rule's with `values`), the reason a rule that holds is not sent, the inputs it lacked."""
    out = [f"Session {weekday(result.session)}: {len(result.rules)} rule(s), {len(result.fired)} fire(s)."]
    for state in result.rules:
        mark = "FIRES" if state.fires else ("holds" if state.holds else "quiet")
        out += ["", f"{mark:5}  {state.id} [{state.severity}] {state.title}"]
        if state.not_sent:
            out.append(f"       holds, not sent: {state.not_sent}")
        if state.fires or values:
            out.append(f"       {state.message}")
        if state.gaps:
            out.append(f"       inputs: {'; '.join(state.gaps)}")
    return out


def check_phone_lines(result) -> list[str]:
    """For a phone (/check): how many fire, each firing rule's message, the gaps in brackets."""
    out = [f"Session {result.session:%a %Y-%m-%d}: {len(result.fired)} of {len(result.rules)} rule(s) fire."]
    out += [f"• {state.id}: {state.message}" for state in result.fired]
    out += [f"({state.id}: {'; '.join(state.gaps)})" for state in result.rules if state.gaps]
    return out
