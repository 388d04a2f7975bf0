"""One definition, two modes: the course a choreographed saga takes (folded from its events by
`domain.choreography`, as each service does) is the course the orchestrator drives, for the same
answers. Both are driven from one table of outcomes (every step's action refused or unknown, the
pivot's settlement answering each way, a compensation refused), for the transfer, the order and
the classes saga, and must make the same calls (service, operation, idempotency key), in the
same order, and end in the same status."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain import choreography
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.order import ORDER
from repository_after.domain.saga import (
    EventKind,
    Outcome,
    SagaDefinition,
    SagaEvent,
    StepRole,
    step_results,
)
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult

AT = "2026-12-05T00:00:00.000000+00:00"
PARAMS: Mapping[str, dict[str, Any]] = {
    "transfer": {"source": "a", "target": "b", "amount": 5},
    "order": {
        "order_id": "o-1",
        "customer": "a",
        "merchant": "b",
        "lines": [{"sku": "apple", "qty": 1}],
        "total": 5,
    },
    "classes": {"class_id": "c-1", "pupils": ["p-1", "p-2"]},
}
#: A script: operation -> what it answers ("ok", "refused", "unknown", or a settlement's word).
Script = Mapping[str, str]
Call = tuple[str, str, str]  # service, operation, key


def _answer(operation: str, script: Script) -> CallResult:
    said = script.get(operation, "ok")
    if said == "refused":
        return CallResult(Outcome.REJECTED, 409, "refused")
    if said == "unknown":
        return CallResult(Outcome.UNKNOWN, 500, "internal_error")
    status = said if said != "ok" else "applied"
    return CallResult(Outcome.SUCCEEDED, 200, None, {"status": status, "reservation_id": "r-1"})


@dataclass
class Scripted:
    """The orchestrator's participant, answering from the script; records every call."""

    script: Script
    calls: list[Call] = field(default_factory=list)

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        del body, timeout
        self.calls.append((service, operation, transaction_id))
        return _answer(operation, self.script)


def orchestrated(definition: SagaDefinition, script: Script) -> tuple[list[Call], str]:
    async def run() -> tuple[list[Call], str]:
        participant = Scripted(script)
        once = RetryPolicy(max_attempts=1)  # an unknown answer is final at once: exhausted
        orchestrator = Orchestrator(
            log=InMemorySagaLog(),
            participant=participant,
            definitions={definition.name: definition},
            forward=once,
            settle=once,
            observers=(),
        )
        try:
            _, state = await orchestrator.run(
                definition.name, dict(PARAMS[definition.name]), saga_id="s-1"
            )
        finally:
            await orchestrator.close()
        return participant.calls, state.status

    return asyncio.run(run())


def choreographed(definition: SagaDefinition, script: Script) -> tuple[list[Call], str]:
    """What the services do, one message after another: fold the message's history, perform
    the pending call, react; an unknown answer is a silent call, which the tracker times out."""
    saga_id, calls = "s-1", []
    reaction = choreography.start(definition, at=AT)
    while reaction.next_call is not None:
        state, call = choreography.pending(definition, reaction.history)
        key = definition.key(saga_id, call)
        call.step.body(PARAMS[definition.name], step_results(reaction.history))  # buildable
        calls.append((call.step.service, call.operation, key))
        result = _answer(call.operation, script)
        if result.outcome is Outcome.UNKNOWN:
            outcome = [choreography.exhausted_event(call, at=AT)]
        else:
            keep = call.role is StepRole.ACTION and definition.result_fields(call.step)
            outcome = [
                SagaEvent(
                    EventKind.ATTEMPT,
                    at=AT,
                    step=call.step.name,
                    role=call.role,
                    operation=call.operation,
                    outcome=result.outcome,
                    attempt=1,
                    status_code=result.status_code,
                    error=result.error,
                    result=result.result,
                    data=result.body if keep and result.outcome is Outcome.SUCCEEDED else None,
                )
            ]
        reaction = choreography.react(definition, state, reaction.history, outcome, at=AT)
    return calls, reaction.state.status


def _table(definition: SagaDefinition) -> list[Script]:
    scripts: list[Script] = [{}]
    for step in definition.steps:
        scripts += [{step.action: "refused"}, {step.action: "unknown"}]
        if step.settlement is not None:
            for word in ("voided", "already_applied", "refused", "unknown", "odd"):
                scripts.append({step.action: "unknown", step.settlement: word})
        if step.compensation is not None:
            last = definition.steps[-1].action
            scripts.append({step.compensation: "refused", last: "refused"})
            scripts.append({step.compensation: "unknown", last: "refused"})
    return scripts


CASES = [
    pytest.param(definition, script, id=f"{definition.name}-{i}-{sorted(script.items())}")
    for definition in (TRANSFER, ORDER, CLASS_ASSIGNMENT)
    for i, script in enumerate(_table(definition))
]


@pytest.mark.parametrize(("definition", "script"), CASES)
def test_a_choreographed_course_makes_the_orchestrated_calls_and_ends_alike(
    definition: SagaDefinition, script: Script
) -> None:
    assert choreographed(definition, script) == orchestrated(definition, script)


def test_the_table_reaches_every_end() -> None:
    ends = {choreographed(d, s)[1] for d in (TRANSFER, ORDER) for s in _table(d)}
    assert ends == {"completed", "compensated", "rejected", "failed_needs_attention"}


def test_a_refusal_compensates_what_was_applied_last_first() -> None:
    calls, status = choreographed(ORDER, {"pay": "refused", "credit": "refused"})
    assert status == "compensated"
    assert [op for _, op, _ in calls] == [
        "create",
        "reserve",
        "debit",
        "credit",
        "compensate_debit",
        "release",
        "cancel",
    ]
    # keyed exactly as orchestration keys them: the money by the saga id, the rest per step
    assert [key for _, _, key in calls] == [
        "s-1:create",
        "s-1:reserve",
        "s-1",
        "s-1",
        "s-1",
        "s-1:reserve",
        "s-1:create",
    ]


def test_ordinal_counts_the_intents_only() -> None:
    reaction = choreography.start(TRANSFER, at=AT)
    parked = SagaEvent(EventKind.PARKED, at=AT, note="x")
    assert choreography.ordinal(reaction.history) == 1
    assert choreography.ordinal((*reaction.history, parked)) == 1


def test_pending_refuses_a_history_at_rest() -> None:
    reaction = choreography.start(TRANSFER, at=AT)
    state, call = choreography.pending(TRANSFER, reaction.history)
    refused = SagaEvent(
        EventKind.ATTEMPT,
        at=AT,
        step=call.step.name,
        role=call.role,
        operation=call.operation,
        outcome=Outcome.REJECTED,
    )
    ended = choreography.react(TRANSFER, state, reaction.history, [refused], at=AT)
    assert ended.next_call is None
    with pytest.raises(ValueError, match="rejected"):
        choreography.pending(TRANSFER, ended.history)
