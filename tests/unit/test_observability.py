"""Bounded live-event fan-out, the bounded per-transaction log buffer, and the id filter."""

from __future__ import annotations

import io
import logging

import pytest

from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.entrypoints.logs import JsonFormatter
from repository_after.observability.context import TransactionIdFilter, current_transaction_id
from repository_after.observability.events import RESYNC, TooManySubscribers, TransitionHub
from repository_after.observability.recent_logs import RecentLogs
from repository_after.service_layer.orchestrator import SagaTransition


def transition(saga_id: str) -> SagaTransition:
    event = SagaEvent(EventKind.OPERATION_STARTED, at="2026-01-01T00:00:00+00:00", step="debit")
    return SagaTransition(saga_id, "transfer", event, "started", "debiting")


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    rec.__dict__.update(extra)
    return rec


async def test_every_subscriber_receives_each_transition() -> None:
    hub = TransitionHub()
    first, second = hub.subscribe(), hub.subscribe()
    hub.observe(transition("tx-1"))
    for queue in (first, second):
        message = queue.get_nowait()
        assert (message["transaction_id"], message["after"]) == ("tx-1", "debiting")


async def test_a_subscriber_that_falls_behind_gets_one_resync_instead_of_a_backlog() -> None:
    hub = TransitionHub(queue_size=3)
    queue = hub.subscribe()
    for i in range(4):
        hub.observe(transition(f"tx-{i}"))
    assert queue.get_nowait() == RESYNC
    assert queue.empty()


async def test_subscribers_are_bounded_and_leave_cleanly() -> None:
    hub = TransitionHub(max_subscribers=1)
    queue = hub.subscribe()
    with pytest.raises(TooManySubscribers):
        hub.subscribe()
    hub.unsubscribe(queue)
    hub.subscribe()
    assert hub.subscribers == 1


def test_recent_logs_keep_a_bounded_number_of_lines_and_transactions() -> None:
    logs = RecentLogs(max_transactions=2, max_lines=3)
    for i in range(5):
        logs.handle(record(f"a {i}", transaction_id="a"))
    logs.handle(record("b", transaction_id="b"))
    logs.handle(record("a again", transaction_id="a"))  # `a` is now the most recent
    logs.handle(record("c", transaction_id="c"))  # forgets `b`, the least recently logged
    logs.handle(record("no id"))
    assert [line["message"] for line in logs.lines("a")] == ["a 3", "a 4", "a again"]
    assert logs.lines("b") == []
    assert [line["message"] for line in logs.lines("c")] == ["c"]


def test_lines_logged_while_a_transaction_is_current_carry_its_id_in_json() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(TransactionIdFilter())
    handler.setFormatter(JsonFormatter())
    token = current_transaction_id.set("tx-ctx")
    try:
        handler.handle(record("from the context"))
        handler.handle(record("explicit", transaction_id="tx-extra"))
    finally:
        current_transaction_id.reset(token)
    handler.handle(record("outside"))
    lines = out.getvalue().splitlines()
    assert '"transaction_id": "tx-ctx"' in lines[0]
    assert '"transaction_id": "tx-extra"' in lines[1]
    assert "transaction_id" not in lines[2]
