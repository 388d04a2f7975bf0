"""HTTP edge of every saga type: start one, inspect it, operate a parked one.

`POST /sagas/{type}` (with an optional `transaction-id`, as `POST /transfers`) validates the
body against the type's parameter model and rules, and the id against the type's keys (422
`transaction_id_too_long`, `Orchestrator.start`), before anything is logged (422, or the rule's
own 4xx), then answers like `POST /transfers`: 200 once the saga is settled, 202 while it runs,
`Idempotent-Replayed: true` for a repeated id with the same request. `GET /sagas/{type}/{id}`
answers a saga only under its own type (another type's id is a 404). `GET /sagas/{type}` lists
that type's newest sagas and its counts by status; `GET /sagas` the newest of every type and the
counts by type and status (`service_layer.saga_listing`): `?status=` must be a status of the
type (of some type, for `/sagas`), else 422, as an invalid `?state=` on `/transfers`; `limit`
is 1-1000, 100 by default, as there. Reads need the read or admin token when one is configured
(`Reader`), operator actions the admin token (`Admin`), exactly as on `/transfers`, which stays
as the transfer's own route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.domain.saga import AT_REST
from repository_after.entrypoints.deps import (
    Admin,
    OptionalTransactionId,
    OrchestratorDep,
    Reader,
    SagaDesk,
    SagaDeskDep,
    SettingsDep,
)
from repository_after.entrypoints.errors import BadRequest
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.schemas import ERROR_RESPONSES
from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.saga_listing import UnknownStatus, list_sagas
from repository_after.service_layer.sagas import run_saga, saga_of_type

router = APIRouter(tags=["sagas"])

SagaTypePath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
SagaIdPath = Annotated[str, Path(pattern=TRANSACTION_ID_PATTERN.pattern, max_length=128)]
#: Checked against the type's statuses by `listing`; the length bound keeps junk out of messages.
StatusQuery = Annotated[str | None, Query(max_length=64)]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]


async def listing(
    desk: SagaDesk, saga_type: str | None, status: str | None, limit: int, param: str = "status"
) -> dict[str, Any]:
    """`saga_listing.list_sagas`; a status the type cannot be in is answered as any invalid
    query parameter (422 `invalid_request`, naming `param` and the statuses allowed)."""
    log, types = desk.orchestrator.log, desk.types
    try:
        return await list_sagas(
            log=log, types=types, saga_type=saga_type, status=status, limit=limit
        )
    except UnknownStatus as exc:
        allowed = ", ".join(repr(s) for s in exc.allowed)
        msg = f"Input should be one of {allowed}"
        error = {"loc": ("query", param), "msg": msg, "type": "enum"}
        raise RequestValidationError([error]) from None


def _response(view: dict[str, Any], headers: dict[str, str] | None = None) -> JsonResponse:
    code = 200 if view["status"] in AT_REST else 202
    return JsonResponse(view, status_code=code, headers=headers)


async def _view(orchestrator: Orchestrator, saga_type: str, saga_id: str) -> dict[str, Any]:
    try:
        return await saga_of_type(orchestrator=orchestrator, saga_type=saga_type, saga_id=saga_id)
    except SagaNotFound:
        raise BadRequest("saga_not_found", f"no {saga_type} saga {saga_id!r}", 404) from None


@router.post(
    "/sagas/{saga_type}", responses={**ERROR_RESPONSES, 202: {"description": "still running"}}
)
async def start_saga(
    desk: SagaDeskDep,
    saga_type: SagaTypePath,
    body: Annotated[dict[str, Any], Body()],
    tx_id: OptionalTransactionId = None,
) -> JsonResponse:
    """Run a saga of `saga_type` with the body as its parameters; answers its final state, or
    202 if it is still running."""
    try:
        run = await run_saga(
            orchestrator=desk.orchestrator,
            types=desk.types,
            saga_type=saga_type,
            raw=body,
            transaction_id=tx_id,
            wait=desk.wait,
        )
    except ValidationError as exc:  # the type's model: answered as any invalid body
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
    headers = {"Location": f"/sagas/{saga_type}/{run.saga_id}"}
    if not run.created:
        headers["Idempotent-Replayed"] = "true"
    return _response(run.view, headers)


@router.get("/sagas", responses=ERROR_RESPONSES, dependencies=[Reader])
async def list_every_saga(
    desk: SagaDeskDep, status: StatusQuery = None, limit: LimitQuery = 100
) -> dict[str, Any]:
    """The newest sagas of every type (each with its `saga` type) and, in `counts`, how many
    sagas each registered type has in each of its statuses, zeros included."""
    return await listing(desk, None, status, limit)


@router.get("/sagas/{saga_type}", responses=ERROR_RESPONSES, dependencies=[Reader])
async def list_sagas_of_type(
    desk: SagaDeskDep, saga_type: SagaTypePath, status: StatusQuery = None, limit: LimitQuery = 100
) -> dict[str, Any]:
    """The newest sagas of `saga_type` and, in `counts`, how many it has in each of its
    statuses, zeros included; 404 `saga_type_not_found` for a type not registered."""
    return {"saga": saga_type, **await listing(desk, saga_type, status, limit)}


@router.get("/sagas/{saga_type}/{saga_id}", responses=ERROR_RESPONSES, dependencies=[Reader])
async def get_saga(
    orchestrator: OrchestratorDep, saga_type: SagaTypePath, saga_id: SagaIdPath
) -> JsonResponse:
    return _response(await _view(orchestrator, saga_type, saga_id))


@router.post("/sagas/{saga_type}/{saga_id}/retry", responses=ERROR_RESPONSES, dependencies=[Admin])
async def retry_saga(
    orchestrator: OrchestratorDep,
    settings: SettingsDep,
    saga_type: SagaTypePath,
    saga_id: SagaIdPath,
) -> JsonResponse:
    """Resume a parked saga; answers its state after at most `transfer_wait` (202 if running)."""
    await _view(orchestrator, saga_type, saga_id)  # 404 under another type, before acting
    await orchestrator.retry(saga_id, note="retry requested over HTTP", wait=False)
    await orchestrator.wait(saga_id, settings.transfer_wait)
    return _response(await _view(orchestrator, saga_type, saga_id))


@router.post(
    "/sagas/{saga_type}/{saga_id}/resolve", responses=ERROR_RESPONSES, dependencies=[Admin]
)
async def resolve_saga(
    orchestrator: OrchestratorDep, saga_type: SagaTypePath, saga_id: SagaIdPath, note: str = ""
) -> JsonResponse:
    await _view(orchestrator, saga_type, saga_id)  # 404 under another type, before acting
    await orchestrator.resolve(saga_id, note=note or "resolved over HTTP")
    return _response(await _view(orchestrator, saga_type, saga_id))
