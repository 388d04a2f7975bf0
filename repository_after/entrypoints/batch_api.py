"""`POST /batch`: several account operations in one HTTP exchange.

The orchestrator's client sends one when calls pile up behind the ones in flight (see
`adapters/http_participant.py`): per operation, HTTP handling costs more than the operation.
Each item is exactly the single endpoint's operation, with its own idempotency record, its own
local transaction (they share group commits) and its own fault draw; the answer lists, in
order, what the single endpoint would have answered. A batch is validated as a whole: an invalid
one is refused with 422 and changes nothing. Any other non-200 answer means every item's outcome
is unknown, which the saga resolves by retrying each item with its own key.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.entrypoints.accounts_api import perform
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.schemas import (
    ERROR_RESPONSES,
    BatchIn,
    BatchOperationIn,
    BatchOut,
)

router = APIRouter(tags=["accounts"])


async def _one(request: Request, item: BatchOperationIn) -> dict[str, Any]:
    op_request = OperationRequest(
        Operation(item.operation), item.transaction_id, item.account_id, item.amount
    )
    answer = await perform(request, op_request)
    return {"status_code": answer.status_code, "body": answer.body, "replayed": answer.replayed}


@router.post("/batch", response_model=BatchOut, responses=ERROR_RESPONSES)
async def batch(request: Request, body: BatchIn) -> JSONResponse:
    """Run each operation as its single endpoint would; answer every result, in order."""
    results = await asyncio.gather(*(_one(request, item) for item in body.operations))
    return JsonResponse({"results": results})
