"""HTTP edge of the orchestrator: start a transfer saga, inspect it, operate a parked one.

The rules and the views live in the service layer (`service_layer.transfers`,
`service_layer.saga_views`, `service_layer.saga_listing`); a route picks the status: 200 once the
saga is settled (completed, failed, or parked for an operator), 202 while it still runs. The
listing shows transfers only (`GET /sagas` lists every type). Operator actions need the admin
bearer token when one is configured (`Admin`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.domain.saga import AT_REST
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.deps import (
    Admin,
    OptionalTransactionId,
    OrchestratorDep,
    Reader,
    SagaDeskDep,
    SettingsDep,
    TransferDeskDep,
)
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.sagas_api import LimitQuery, StatusQuery, listing
from repository_after.entrypoints.schemas import ERROR_RESPONSES, TransferIn
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_views import load_saga_view
from repository_after.service_layer.transfers import run_transfer

router = APIRouter(tags=["transfers"])

#: A path id is checked before any query: a NUL byte or an over-long id is a 422, never a storage
#: error (PostgreSQL's driver rejects NUL in text).
TransactionIdPath = Annotated[str, Path(pattern=TRANSACTION_ID_PATTERN.pattern, max_length=128)]


def _response(view: dict[str, Any], headers: dict[str, str] | None = None) -> JsonResponse:
    code = 200 if view["status"] in AT_REST else 202
    return JsonResponse(view, status_code=code, headers=headers)


async def _view_response(orchestrator: Orchestrator, saga_id: str) -> JsonResponse:
    return _response(await load_saga_view(orchestrator=orchestrator, saga_id=saga_id))


@router.post("/transfers", responses={**ERROR_RESPONSES, 202: {"description": "still running"}})
async def create_transfer(
    desk: TransferDeskDep, body: TransferIn, tx_id: OptionalTransactionId = None
) -> JsonResponse:
    """Run a transfer saga; answers its final state, or 202 if it is still running."""
    run = await run_transfer(
        orchestrator=desk.orchestrator,
        source=body.source,
        target=body.target,
        amount=body.amount,
        transaction_id=tx_id,
        wait=desk.wait,
    )
    headers = {"Location": f"/transfers/{run.saga_id}"}
    if not run.created:
        headers["Idempotent-Replayed"] = "true"
    return _response(run.view, headers)


@router.get("/transfers/{transaction_id}", responses=ERROR_RESPONSES, dependencies=[Reader])
async def get_transfer(
    orchestrator: OrchestratorDep, transaction_id: TransactionIdPath
) -> JsonResponse:
    return await _view_response(orchestrator, transaction_id)


@router.get("/transfers", dependencies=[Reader])
async def list_transfers(
    desk: SagaDeskDep, state: StatusQuery = None, limit: LimitQuery = 100
) -> dict[str, Any]:
    """The newest transfers (no other type's sagas), only those in `state` (a transfer's status,
    else 422), and the count of transfers in each status that has any."""
    listed = await listing(desk, TRANSFER.name, state, limit, param="state")
    counts = {status: n for status, n in listed["counts"].items() if n}
    return {"transfers": listed["sagas"], "counts": counts}


@router.post("/transfers/{transaction_id}/retry", responses=ERROR_RESPONSES, dependencies=[Admin])
async def retry_transfer(
    orchestrator: OrchestratorDep, settings: SettingsDep, transaction_id: TransactionIdPath
) -> JsonResponse:
    """Resume a parked saga; answers its state after at most `transfer_wait` (202 if running)."""
    await orchestrator.retry(transaction_id, note="retry requested over HTTP", wait=False)
    await orchestrator.wait(transaction_id, settings.transfer_wait)
    return await _view_response(orchestrator, transaction_id)


@router.post("/transfers/{transaction_id}/resolve", responses=ERROR_RESPONSES, dependencies=[Admin])
async def resolve_transfer(
    orchestrator: OrchestratorDep, transaction_id: TransactionIdPath, note: str = ""
) -> JsonResponse:
    await orchestrator.resolve(transaction_id, note=note or "resolved over HTTP")
    return await _view_response(orchestrator, transaction_id)
