"""HTTP edge of the orchestrator: start a transfer saga, inspect it, operate a parked one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from repository_after.domain.saga import SETTLED, EventKind, SagaState
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.deps import Admin, OptionalTransactionId
from repository_after.entrypoints.errors import BadRequest
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.schemas import ERROR_RESPONSES, TransferIn
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_ports import StoredSaga, event_times

router = APIRouter(tags=["transfers"])


def _orchestrator(request: Request) -> Orchestrator:
    orchestrator: Orchestrator = request.app.state.container.orchestrator
    return orchestrator


def transfer_view(stored: StoredSaga, state: SagaState) -> dict[str, Any]:
    """A saga as JSON: its parameters, status, and every attempt of every operation."""
    attempts = [
        {
            "step": e.step,
            "operation": e.operation,
            "role": e.role,
            "attempt": e.attempt,
            "outcome": e.outcome,
            "status_code": e.status_code,
            "error": e.error,
            "result": e.result,
            "started_at": e.started_at,
            "finished_at": e.at,
        }
        for e in stored.events
        if e.kind is EventKind.ATTEMPT
    ]
    notes = [
        {"action": e.kind.value, "note": e.note, "at": e.at}
        for e in stored.events
        if e.kind in (EventKind.OPERATOR_RETRY, EventKind.OPERATOR_RESOLVE)
    ]
    return {
        "transaction_id": stored.saga_id,
        "saga": stored.definition,
        **stored.params,
        "status": state.status,
        "parked_reason": state.parked_reason,
        "created_at": stored.created_at,
        "updated_at": stored.updated_at,
        "attempts": attempts,
        "operator_actions": notes,
    }


def _response(
    stored: StoredSaga, state: SagaState, headers: dict[str, str] | None = None
) -> JSONResponse:
    code = 200 if state.status in SETTLED else 202
    return JsonResponse(transfer_view(stored, state), status_code=code, headers=headers)


async def _view_response(
    orchestrator: Orchestrator, saga_id: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    stored = await orchestrator.get(saga_id)
    return _response(stored, orchestrator.state_of(stored), headers)


@router.post("/transfers", responses={**ERROR_RESPONSES, 202: {"description": "still running"}})
async def create_transfer(
    request: Request, body: TransferIn, tx_id: OptionalTransactionId = None
) -> JSONResponse:
    """Run a transfer saga; answers its final state, or 202 if it is still running."""
    if body.source == body.target:
        raise BadRequest("same_account", "source and target must differ")
    orchestrator = _orchestrator(request)
    params = {"source": body.source, "target": body.target, "amount": body.amount}
    saga_id, created = await orchestrator.start(TRANSFER.name, params, saga_id=tx_id)
    wait = request.app.state.container.settings.transfer_wait
    headers = {"Location": f"/transfers/{saga_id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
        await orchestrator.wait(saga_id, wait)
        return await _view_response(orchestrator, saga_id, headers=headers)
    state = await orchestrator.outcome(saga_id, wait)
    if state is None:  # still running (202), or its driver stopped: show what the log holds
        return await _view_response(orchestrator, saga_id, headers=headers)
    # Driven here from creation to the end: every event is in memory, nothing to read back.
    created_at, updated_at = event_times(state.history)
    stored = StoredSaga(
        saga_id, TRANSFER.name, params, state.status, created_at, updated_at, state.history
    )
    return _response(stored, state, headers)


@router.get("/transfers/{transaction_id}", responses=ERROR_RESPONSES)
async def get_transfer(request: Request, transaction_id: str) -> JSONResponse:
    return await _view_response(_orchestrator(request), transaction_id)


@router.get("/transfers")
async def list_transfers(
    request: Request,
    state: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    log = _orchestrator(request).log
    rows = await log.list_recent(status=state, limit=limit)
    return {
        "transfers": [
            {
                "transaction_id": r.saga_id,
                **r.params,
                "status": r.status,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in rows
        ],
        "counts": await log.count_by_status(),
    }


@router.post("/transfers/{transaction_id}/retry", responses=ERROR_RESPONSES, dependencies=[Admin])
async def retry_transfer(request: Request, transaction_id: str) -> JSONResponse:
    """Resume a parked saga; answers its state after at most `transfer_wait` (202 if running)."""
    orchestrator = _orchestrator(request)
    await orchestrator.retry(transaction_id, note="retry requested over HTTP", wait=False)
    await orchestrator.wait(transaction_id, request.app.state.container.settings.transfer_wait)
    return await _view_response(orchestrator, transaction_id)


@router.post("/transfers/{transaction_id}/resolve", responses=ERROR_RESPONSES, dependencies=[Admin])
async def resolve_transfer(request: Request, transaction_id: str, note: str = "") -> JSONResponse:
    orchestrator = _orchestrator(request)
    await orchestrator.resolve(transaction_id, note=note or "resolved over HTTP")
    return await _view_response(orchestrator, transaction_id)
