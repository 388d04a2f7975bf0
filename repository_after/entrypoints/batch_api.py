"""`POST /batch`: several account operations in one HTTP exchange.

The orchestrator's client sends one when calls pile up behind the ones in flight (see
`adapters/http_participant.py`): per operation, HTTP handling costs more than the operation.
Each item is exactly the single endpoint's operation, with its own idempotency record, its own
local transaction (they share group commits) and its own fault draw; the answer lists, in
order, what the single endpoint would have answered. A batch is validated as a whole: an invalid
one is refused with 422 and changes nothing. Any other non-200 answer means every item's outcome
is unknown, which the saga resolves by retrying each item with its own key.

Observed like the single endpoint, item by item: each item's log lines carry its transaction id,
a replayed item counts in `sagabank_idempotent_replays` under its single endpoint's route, and
with tracing on each item gets its own server span, a child of the item's `traceparent` (the
saga step that made the call) and linked to the batch's span, so a transfer stays one trace.
Guarded like the single endpoints (`Service`): with a service token configured, a batch without
it is refused as a whole (401) before any item runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.domain.errors import BusinessError
from repository_after.entrypoints.deps import (
    AccountService,
    AccountServiceDep,
    Service,
    TelemetryDep,
)
from repository_after.entrypoints.errors import answer_for
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.schemas import (
    ERROR_RESPONSES,
    BatchIn,
    BatchOperationIn,
    BatchOut,
)
from repository_after.observability.context import current_transaction_id
from repository_after.observability.telemetry import Telemetry
from repository_after.participant_kit.records import Answer
from repository_after.service_layer.account_operations import InjectedFault, perform_operation

router = APIRouter(tags=["accounts"])


class _Item:
    """What one item needs besides itself: the request's collaborators, solved once."""

    __slots__ = ("service", "telemetry")

    def __init__(self, service: AccountService, telemetry: Telemetry) -> None:
        self.service, self.telemetry = service, telemetry

    async def perform(self, request: OperationRequest) -> Answer:
        """The single endpoint's answer: its bytes, or the error table's answer to its refusal.
        Anything else (a storage failure) fails the whole batch: every outcome is unknown."""
        try:
            service = self.service
            return await perform_operation(
                store=service.store, faults=service.faults, request=request
            )
        except (BusinessError, InjectedFault) as exc:
            reply = answer_for(exc)
            assert reply is not None  # the table answers both
            return Answer(reply.status_code, orjson.dumps(reply.body))


async def _one(item: _Item, body: BatchOperationIn) -> dict[str, Any]:
    # Each item runs in its own task (`gather`), so this sets the id for this item's lines only.
    current_transaction_id.set(body.transaction_id)
    op_request = OperationRequest(
        Operation(body.operation), body.transaction_id, body.account_id, body.amount
    )
    telemetry = item.telemetry
    if telemetry.tracer is None:
        reply = await item.perform(op_request)
    else:
        reply = await _traced(telemetry.tracer, item, body, op_request)
    if reply.replayed:
        telemetry.http_metrics.replays_by(f"/{body.operation}").inc()
    # The item's exact bytes, as the single endpoint sends them (a Fragment is not re-encoded).
    sent = orjson.Fragment(reply.body)
    return {"status_code": reply.status_code, "body": sent, "replayed": reply.replayed}


def _caller(traceparent: str | None) -> Context | None:
    """The calling step's context; None (a child of the batch's span) if absent or malformed."""
    if traceparent is None:
        return None
    context = propagate.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


async def _traced(
    tracer: trace.Tracer, item: _Item, body: BatchOperationIn, op_request: OperationRequest
) -> Answer:
    batch_span = trace.get_current_span().get_span_context()
    with tracer.start_as_current_span(
        f"POST /{body.operation}",
        context=_caller(body.traceparent),
        kind=SpanKind.SERVER,
        links=[Link(batch_span)] if batch_span.is_valid else None,
        attributes={"sagabank.transaction_id": body.transaction_id, "sagabank.batched": True},
        record_exception=True,
    ) as span:
        reply = await item.perform(op_request)
        span.set_attribute("http.response.status_code", reply.status_code)
        if reply.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return reply


@router.post("/batch", response_model=BatchOut, responses=ERROR_RESPONSES, dependencies=[Service])
async def batch(service: AccountServiceDep, telemetry: TelemetryDep, body: BatchIn) -> JsonResponse:
    """Run each operation as its single endpoint would; answer every result, in order."""
    item = _Item(service, telemetry)
    results = await asyncio.gather(*(_one(item, op) for op in body.operations))
    return JsonResponse({"results": results})
