"""The operator-facing log line of every saga transition (`transitions.log_transition`).

An operator follows a saga in the orchestrator's log: one INFO line per applied event, carrying
the transaction id, saying what happened (the kind; the step and operation when there is one;
the outcome with the status code, or the error when there is no code) and the status before and
after. These tests pin the exact lines of one saga that goes through every kind of transition:
an intent, unknown attempts with and without an error word, a give-up, a refused compensation
(a status code, which wins over the error) that parks the saga, and an operator action (no step).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import Outcome, SagaStatus
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult
from repository_after.service_layer.transitions import LOGGER_NAME

PARAMS = {"source": "alice", "target": "bob", "amount": 300}
POLICY = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)


@dataclass
class Scripted:
    """Answers each call with the next scripted result."""

    script: list[CallResult]
    calls: list[str] = field(default_factory=list)

    async def call(self, **kwargs: Any) -> CallResult:
        self.calls.append(kwargs["operation"])
        return self.script.pop(0)


async def test_every_kind_of_transition_is_logged_as_one_exact_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    participant = Scripted(
        [
            CallResult(Outcome.UNKNOWN, None, "timeout"),  # no answer: the error word is shown
            CallResult(Outcome.UNKNOWN),  # neither a code nor an error: empty brackets
            CallResult(Outcome.REJECTED, 409, "account_frozen"),  # the code, not the word
        ]
    )
    orchestrator = Orchestrator(
        log=InMemorySagaLog(),
        participant=participant,
        definitions=DEFINITIONS,
        forward=POLICY,
        settle=POLICY,
        worker_id="w",
        lease_ttl=60.0,
    )  # the default observers: `log_transition`
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id="t-1")
        assert state.status is SagaStatus.FAILED_NEEDS_ATTENTION
        await orchestrator.resolve("t-1", note="refunded by hand")
    await orchestrator.close()
    lines = [
        (r.name, r.levelno, r.transaction_id, r.getMessage())  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == LOGGER_NAME and r.getMessage().startswith("saga ")
    ]
    prefix = "saga transfer t-1: "
    assert lines == [
        (LOGGER_NAME, logging.INFO, "t-1", prefix + line)
        for line in (
            "operation_started debit/debit [started -> debiting]",
            "attempt debit/debit -> unknown (timeout) [debiting -> debiting]",
            "attempt debit/debit -> unknown () [debiting -> debiting]",
            "retries_exhausted debit/debit [debiting -> compensating]",
            "operation_started debit/compensate_debit [compensating -> compensating]",
            "attempt debit/compensate_debit -> rejected (409)"
            " [compensating -> failed_needs_attention]",
            "operator_resolve [failed_needs_attention -> resolved]",
        )
    ]
    assert participant.calls == ["debit", "debit", "compensate_debit"]
