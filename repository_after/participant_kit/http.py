"""The HTTP edge of a participant: `participant_router(service, token=...)`, its operations, and
`participant_reads(service)`, the kit's reads. One edge for every participant: the kit's services
(`ParticipantService`) and any service with the interface it uses (`Served`; the account
service passes an adapter over its own use case, `entrypoints/account_edge.py`).

Routes:
- `POST /{operation}` for every registered operation: header `transaction-id` (the key,
  `domain.ids.TRANSACTION_ID_PATTERN`), body a JSON object validated by `service.parse` (a
  compensation or settlement may have none). The answer is `service.perform`'s, with
  `Idempotent-Replayed: true` on a replay. The OpenAPI document names the header, the body's
  schema (`service.request_model`) and, when the host gives one, the answer's (`response_models`).
- `POST /batch`: several operations in one exchange (`batch`: validated as a whole, each item
  answered as its single endpoint, observed item by item through `EdgeHooks`).
- `GET /health` (unless `health=False`, for a host with its own): 200 when
  `service.check_health()` holds, else 503. Open: a health check.
- `participant_reads`: `GET /faults`, the injected faults (`faults.OperationFaults.view`), a
  read like the service's own: a router for its host to include behind its read guard
  (`services/hosting.py`), as the account service's `GET /admin/faults` is.

The service token (optional): when set, every operation and `/batch` need
`Authorization: Bearer <token>`, compared in constant time; anyone else gets 401 `unauthorized`
before the body is read, so nothing is recorded. The host passes the token of the running
process's settings when it builds the router (`entrypoints.app.create_app`). Error bodies are
the product's `{"error": code, "message": …}` (`answers`, entrypoints/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, SecretStr, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.participant_kit.answers import (
    JSON,
    REPLAYED,
    bad_key,
    bearer_guard,
    bearer_matches,
    invalid_request,
    json_response,
    read_json,
    respond,
    validation_details,
)
from repository_after.participant_kit.batch import (
    BatchOut,
    EdgeHooks,
    batch_items,
    batch_schema,
    run_item,
)
from repository_after.participant_kit.core import ParticipantService, Refusal
from repository_after.participant_kit.records import Answer, error_body
from repository_after.participant_kit.rules import Action, Kind
from repository_after.service_layer.ports import StorageError

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_BATCH",
    "REPLAYED",
    "EdgeHooks",
    "Served",
    "bearer_guard",
    "bearer_matches",
    "install_error_handlers",
    "invalid_request",
    "participant_reads",
    "participant_router",
    "respond",
    "validation_details",
]

#: The account service's bound (`domain.accounts.MAX_BATCH`): what the orchestrator batches.
MAX_BATCH = 128
_json = json_response


class Served(Protocol):
    """What the router uses of a participant. `parse` raises pydantic's `ValidationError`;
    `perform` never raises (every outcome, errors included, is an `Answer`)."""

    @property
    def name(self) -> str: ...

    @property
    def operations(self) -> Mapping[str, tuple[Kind, Action[Any]]]: ...

    def parse(self, operation: str, raw: object) -> BaseModel | None: ...

    def request_model(self, operation: str) -> type[BaseModel] | None: ...

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer: ...

    async def check_health(self) -> bool: ...


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$defs` inlined, so it stands alone in the OpenAPI
    document (`openapi_extra` cannot add components). A recursive model is refused."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise ValueError(f"{model.__name__}: a recursive model has no inline schema")
            return resolve(defs[name], (*seen, name))
        return {k: resolve(v, seen) for k, v in node.items()}

    resolved: dict[str, Any] = resolve(schema, ())
    return resolved


def _operation_doc(service: Served, operation: str, kind: Kind) -> dict[str, Any]:
    key = {
        "name": "transaction-id",
        "in": "header",
        "required": True,
        "description": "idempotency key: 1-128 of letters, digits, '.', '_', ':', '-'",
        "schema": {"type": "string", "pattern": TRANSACTION_ID_PATTERN.pattern},
    }
    doc: dict[str, Any] = {"parameters": [key]}
    model = service.request_model(operation)
    if model is not None:
        doc["requestBody"] = {
            "required": kind is Kind.ACTION,
            "content": {JSON: {"schema": inline_schema(model)}},
        }
    return doc


def participant_router(
    service: Served,
    *,
    token: SecretStr | None = None,
    max_batch: int = MAX_BATCH,
    hooks: EdgeHooks | None = None,
    response_models: Mapping[str, type[BaseModel]] | None = None,
    health: bool = True,
) -> APIRouter:
    """`service`'s operations, `/batch` and (with `health`) `/health`, guarded by `token`;
    `hooks` observe the items of a batch; `response_models`: an operation's 200 answer, for the
    OpenAPI document only (the answer is sent as `perform`'s bytes, never re-validated)."""
    router = APIRouter(tags=[service.name])
    guard = bearer_guard(token)
    seen = hooks or EdgeHooks()
    answers = response_models or {}

    def endpoint(operation: str) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            if (refused := guard(request)) is not None:
                return refused
            key = request.headers.get("transaction-id")
            if key is None or TRANSACTION_ID_PATTERN.fullmatch(key) is None:
                return bad_key()
            raw = await read_json(request)
            if isinstance(raw, Response):
                return raw
            try:
                body = service.parse(operation, raw)
            except ValidationError as exc:
                return invalid_request(validation_details(exc, ("body",)))
            return respond(await service.perform(operation, key, body))

        call.__name__ = operation
        return call

    for operation, (kind, action) in service.operations.items():
        router.add_api_route(
            f"/{operation}",
            endpoint(operation),
            methods=["POST"],
            name=operation,
            summary=f"{kind.value} of {action.name}",
            response_class=JSONResponse,  # for the document: the answer is sent as it is
            response_model=answers.get(operation),
            openapi_extra=_operation_doc(service, operation, kind),
        )

    async def batch(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        raw = await read_json(request)
        if isinstance(raw, Response):
            return raw
        items = batch_items(service, raw, max_batch)
        if isinstance(items, Response):
            return items
        # The single endpoints are the batch route's siblings, under the host's prefix: the
        # path as routed (the kit's routes have no parameters, so it is the route's template).
        scope = request.scope
        base = scope["path"].removeprefix(scope.get("root_path", "")).removesuffix("batch")
        results = await asyncio.gather(
            *(run_item(service.perform, i, route=base + i.operation, hooks=seen) for i in items)
        )
        return _json(200, {"results": results})

    router.add_api_route(
        "/batch",
        batch,
        methods=["POST"],
        response_class=JSONResponse,
        response_model=BatchOut,
        summary=f"several operations of {service.name} in one exchange",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": batch_schema([*service.operations], max_batch)}},
            }
        },
    )

    if health:

        async def check() -> Response:
            if await service.check_health():
                return _json(200, {"status": "ok", "service": service.name})
            return _json(503, {"status": "unavailable", "service": service.name})

        router.add_api_route("/health", check, methods=["GET"], response_class=Response)
    return router


def participant_reads(service: ParticipantService) -> APIRouter:
    """The kit's reads (`GET /faults`), without a guard: include it behind your read guard."""
    router = APIRouter(tags=[service.name])

    async def faults() -> Response:
        return _json(200, {"service": service.name, **service.faults.view()})

    router.add_api_route("/faults", faults, methods=["GET"], response_class=Response)
    return router


_HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def install_error_handlers(app: FastAPI) -> None:
    """The product's error shapes for a participant app's own routes (the kit's routes answer
    everything themselves): a refusal as itself, 503 for storage, 500 for anything else (logged,
    never sent), an HTTPException (Starlette's 404/405, a host's read guard's 401
    `unauthorized`) as `{"error", "message"}`."""

    async def refusal(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        return _json(exc.http_status, error_body(exc.code, exc.message))

    async def storage(_: Request, exc: Exception) -> Response:
        logger.error("storage failure: %s", exc)
        return _json(503, error_body("storage_unavailable", "storage is unavailable; retry later"))

    async def http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _json(exc.status_code, error_body(code, str(exc.detail)))

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return invalid_request(details)

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _json(500, error_body("internal_error", "internal error"))

    app.add_exception_handler(Refusal, refusal)
    app.add_exception_handler(StorageError, storage)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(Exception, unexpected)
