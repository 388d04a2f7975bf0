"""The classes service's HTTP edge (its operations and rules: `services.classes`).

Two routers, as the inventory's (`services.inventory_http`):
- `classes_routes`: the kit's operations (`enrol`, `void_enrol`, `/batch`, `/health`) and
  `POST /classes` (open a class with a capacity, or change it), guarded by the service token
  when one is set (`/health` excepted: it is open).
- `classes_reads`: `GET /classes` (a page by id, each class with its roster: `limit` ≤ 100,
  `after` a class id), `GET /classes/{id}`, `GET /audit` and the kit's `GET /faults`. No guard
  of its own: its host includes it behind its read guard (`sagabank serve`:
  `entrypoints.deps.Reader`; `create_classes_app`: `read_token`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import SecretStr, ValidationError

from repository_after.participant_kit import ParticipantService, bearer_guard
from repository_after.participant_kit.http import EdgeHooks, invalid_request, validation_details
from repository_after.services.classes import (
    MAX_LIST,
    ClassIn,
    audit,
    find_class,
    list_classes,
    open_class,
    open_classes,
)
from repository_after.services.hosting import (
    LOOPBACK_HOSTS,
    AfterCursor,
    IdPath,
    add_audit_route,
    found_or_404,
    json_answer,
    participant_reads_router,
    participant_routes,
    secret,
    standalone,
)


def classes_routes(
    service: ParticipantService, token: SecretStr | None, hooks: EdgeHooks | None = None
) -> APIRouter:
    """The classes' operations and `POST /classes` over `service`, without request limits or a
    lifespan (what a `sagabank serve` process includes under `/classes`); `create_classes_app`
    is the standalone service."""
    router = participant_routes(service, token, hooks)
    guard = bearer_guard(token)

    @router.post("/classes", response_class=Response)
    async def post_class(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            body = ClassIn.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(validation_details(exc))
        row = await service.store.transaction(
            lambda tx: open_class(tx, body.class_id, body.capacity)
        )
        return json_answer(200, row)

    return router


def classes_reads(service: ParticipantService) -> APIRouter:
    """The classes' reads; the host puts the whole router behind its read guard."""
    router = participant_reads_router(service)

    @router.get("/classes", response_class=Response)
    async def get_classes(
        limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
        after: AfterCursor = None,
    ) -> Response:
        found = await service.store.read(lambda tx: list_classes(tx, limit=limit, after=after))
        return json_answer(200, {"classes": found})

    @router.get("/classes/{class_id}", response_class=Response)
    async def get_class(class_id: IdPath) -> Response:
        found = await service.store.read(lambda tx: find_class(tx, class_id))
        return found_or_404(found, error="class_not_found", message="no such class")

    add_audit_route(router, service, audit)
    return router


def create_classes_app(
    database_path: Path | str,
    token: str | None = None,
    *,
    read_token: str | None = None,
    trusted_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """The classes service over `database_path` (a SQLite file, or a PostgreSQL URL); `token`
    guards its operations and `POST /classes`, `read_token` its reads (unset: open). The
    product's request limits come first (as the inventory's). The store opens now and closes
    with the app's lifespan."""
    service = open_classes(database_path)
    return standalone(
        "sagabank classes",
        classes_routes(service, secret(token)),
        classes_reads(service),
        service.store,
        read_token=secret(read_token),
        trusted_hosts=trusted_hosts,
    )
