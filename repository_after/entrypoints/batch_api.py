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
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.entrypoints.accounts_api import Answer, perform
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.schemas import (
    ERROR_RESPONSES,
    BatchIn,
    BatchOperationIn,
    BatchOut,
)
from repository_after.observability.context import current_transaction_id
from repository_after.observability.telemetry import Telemetry

router = APIRouter(tags=["accounts"])


async def _one(request: Request, item: BatchOperationIn) -> dict[str, Any]:
    # Each item runs in its own task (`gather`), so this sets the id for this item's lines only.
    current_transaction_id.set(item.transaction_id)
    op_request = OperationRequest(
        Operation(item.operation), item.transaction_id, item.account_id, item.amount
    )
    telemetry: Telemetry = request.app.state.telemetry
    if telemetry.tracer is None:
        answer = await perform(request, op_request)
    else:
        answer = await _traced(telemetry.tracer, request, item, op_request)
    if answer.replayed:
        telemetry.http_metrics.replays_by(f"/{item.operation}").inc()
    return {"status_code": answer.status_code, "body": answer.body, "replayed": answer.replayed}


def _caller(traceparent: str | None) -> Context | None:
    """The calling step's context; None (a child of the batch's span) if absent or malformed."""
    if traceparent is None:
        return None
    context = propagate.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


async def _traced(
    tracer: trace.Tracer, request: Request, item: BatchOperationIn, op_request: OperationRequest
) -> Answer:
    batch_span = trace.get_current_span().get_span_context()
    with tracer.start_as_current_span(
        f"POST /{item.operation}",
        context=_caller(item.traceparent),
        kind=SpanKind.SERVER,
        links=[Link(batch_span)] if batch_span.is_valid else None,
        attributes={"sagabank.transaction_id": item.transaction_id, "sagabank.batched": True},
        record_exception=True,
    ) as span:
        answer = await perform(request, op_request)
        span.set_attribute("http.response.status_code", answer.status_code)
        if answer.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return answer


@router.post("/batch", response_model=BatchOut, responses=ERROR_RESPONSES)
async def batch(request: Request, body: BatchIn) -> JSONResponse:
    """Run each operation as its single endpoint would; answer every result, in order."""
    results = await asyncio.gather(*(_one(request, item) for item in body.operations))
    return JsonResponse({"results": results})
