"""Performs ONE remote operation of a saga: every attempt its retry policy allows.

Its intent (`intent`) is logged by the driver before the first attempt. Each attempt is
recorded as an `attempt` event (outcome, status code, the participant's status word, start and
end times); when the last attempt is still unknown, a `retries_exhausted` event follows it.
Invariants: the lease is checked before each attempt (`LeaseBook.current`, with the lease the
driver's view was built under), so a worker that lost the saga makes no further call; every
attempt carries the same idempotency key (`SagaDefinition.key`) and the same body, built once from
the saga's parameters and the logged answers of earlier steps; a successful answer whose fields a
later step reads is logged with the attempt (`data`); an unknown attempt that will be retried is
handed to `log_before_retry` (written durably) before the wait, while the last attempt is
returned unwritten, for the driver to write with what follows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from repository_after.domain.saga import (
    Call,
    EventKind,
    Outcome,
    SagaDefinition,
    SagaEvent,
    StepRole,
    step_results,
)
from repository_after.service_layer.clock import utc_now as _now
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult, Lease, Participant


def intent(call: Call) -> SagaEvent:
    """The `operation_started` event the driver logs before the operation's first attempt."""
    return SagaEvent(
        EventKind.OPERATION_STARTED,
        at=_now(),
        step=call.step.name,
        role=call.role,
        operation=call.operation,
    )


async def perform(
    *,
    participant: Participant,
    leases: LeaseBook,
    lease: Lease,
    policy: RetryPolicy,
    saga_id: str,
    definition: SagaDefinition,
    params: dict[str, Any],
    history: Sequence[SagaEvent],
    call: Call,
    log_before_retry: Callable[[list[SagaEvent]], Awaitable[object]],
) -> tuple[list[SagaEvent], list[SagaEvent]]:
    """All attempts of one operation: (every event, the events not logged yet). `history` is
    the saga's log so far (the earlier steps' answers a request may read)."""
    events: list[SagaEvent] = []
    logged = 0
    key = definition.key(saga_id, call)
    body = call.step.body(params, step_results(history))
    keep = call.role is StepRole.ACTION and bool(definition.result_fields(call.step))

    async def before_retry(_: CallResult) -> None:
        nonlocal logged
        await log_before_retry(events[logged:])
        logged = len(events)

    async def attempt(number: int) -> CallResult:
        await leases.current(saga_id, lease)  # never call for a saga no longer held
        started = _now()
        result = await participant.call(
            service=call.step.service,
            operation=call.operation,
            transaction_id=key,
            body=body,
            timeout=policy.attempt_timeout,
        )
        events.append(
            SagaEvent(
                EventKind.ATTEMPT,
                at=_now(),
                step=call.step.name,
                role=call.role,
                operation=call.operation,
                outcome=result.outcome,
                attempt=number,
                status_code=result.status_code,
                error=result.error,
                result=result.result,
                started_at=started,
                data=result.body if keep and result.outcome is Outcome.SUCCEEDED else None,
            )
        )
        return result

    final = await policy.run(attempt, before_retry)
    if final.outcome is Outcome.UNKNOWN:
        events.append(
            SagaEvent(
                EventKind.RETRIES_EXHAUSTED,
                at=_now(),
                step=call.step.name,
                role=call.role,
                operation=call.operation,
            )
        )
    return events, events[logged:]
