"""Outbox store operations where `make mutate` found changes no test noticed: holding for quiet hours,
putting failed rows back (`outbox --retry`, which the other tests reach only through a child process) and
the counts `status` shows. Each test here failed on a surviving mutant (README, "Tests").
"""

from __future__ import annotations

from datetime import timedelta

from bot.store.store import stored_time
from tests.test_store import queued


def states(store) -> dict:
    return {r.rule_id: (r.status, r.attempts) for r in store.outbox.rows()}


def test_hold_moves_only_pending_rows_and_holding_nothing_moves_nothing(store):
    now, (a, b) = queued(store, "a", "b")
    later = now + timedelta(hours=9)
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    assert store.outbox.hold([], later) == 0
    assert store.outbox.hold([a, b], later) == 1  # b is being sent: it is not held
    rows = {r.rule_id: r for r in store.outbox.rows()}
    assert stored_time(rows["a"].next_attempt_at) == later
    assert stored_time(rows["b"].next_attempt_at) == now
    assert states(store) == {"a": ("pending", 0), "b": ("sending", 0)}


def test_requeue_puts_failed_rows_back_to_pending_due_now_with_fresh_attempts(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.retry(a, "sender", "refused", now + timedelta(days=1), failed=True)
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    store.outbox.retry(b, "sender", "timed out", now + timedelta(hours=1), failed=False)
    assert states(store) == {"a": ("failed", 1), "b": ("pending", 1), "c": ("pending", 0)}
    retry_at = now + timedelta(days=2)
    assert store.outbox.requeue_failed(retry_at) == 1
    assert states(store) == {"a": ("pending", 0), "b": ("pending", 1), "c": ("pending", 0)}
    rows = {r.rule_id: r for r in store.outbox.rows()}
    assert stored_time(rows["a"].next_attempt_at) == retry_at
    assert stored_time(rows["b"].next_attempt_at) == now + timedelta(hours=1)
    assert store.outbox.requeue_failed(retry_at) == 0


def test_counts_are_rows_per_status(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    assert store.outbox.counts() == {"pending": 3}
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.sent(a, now)
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    assert store.outbox.counts() == {"sent": 1, "sending": 1, "pending": 1}


def test_a_send_after_a_failed_attempt_is_recorded_whole_and_the_claim_cleared(store):
    now, (a,) = queued(store, "a")
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.retry(a, "sender", "timed out", now, failed=False)
    store.outbox.claim([a], "sender", now + timedelta(minutes=10))
    store.outbox.sent(a, now + timedelta(minutes=1))
    [row] = store.outbox.rows()
    assert (row.status, row.attempts, row.last_error, row.owner, row.lease_until) == ("sent", 2, "", None, None)
    assert stored_time(row.sent_at) == now + timedelta(minutes=1)


def test_rows_are_listed_newest_first_up_to_the_limit_and_by_status(store):
    now, (a, b, c) = queued(store, "a", "b", "c")
    store.outbox.claim([b], "sender", now + timedelta(minutes=10))
    assert [r.rule_id for r in store.outbox.rows()] == ["c", "b", "a"]
    assert [r.rule_id for r in store.outbox.rows(limit=2)] == ["c", "b"]
    assert [r.rule_id for r in store.outbox.rows(["pending"])] == ["c", "a"]
    assert [r.rule_id for r in store.outbox.rows(["sending", "sent"])] == ["b"]
