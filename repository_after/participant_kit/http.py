"""The HTTP edge of a participant: `participant_router(service, token=...)`, its operations, and
`participant_reads(service)`, the kit's reads.

Routes:
- `POST /{operation}` for every registered operation: header `transaction-id` (the key,
  `domain.ids.TRANSACTION_ID_PATTERN`), body a JSON object validated by the operation's model
  (a compensation or settlement may have none). The answer is `ParticipantService.perform`'s,
  with `Idempotent-Replayed: true` on a replay.
- `POST /batch`: `{"operations": [{"operation", "transaction_id", "traceparent"?, …fields}]}`,
  1..`max_batch` items, validated as a whole (an invalid batch is 422 and runs nothing); each
  item runs as its single endpoint would and is answered `{"status_code", "body", "replayed"}`
  in order, its body the very bytes the single endpoint sends (a `traceparent` is accepted and
  not used yet).
- `GET /health`: 200 when the store answers a read, else 503. Open: a health check.
- `participant_reads`: `GET /faults`, the injected faults (`faults.OperationFaults.view`), a
  read like the service's own: a router for its host to include behind its read guard
  (`services/hosting.py`), as the account service's `GET /admin/faults` is.

The service token (optional): when set, every operation and `/batch` need
`Authorization: Bearer <token>`, compared in constant time; anyone else gets 401 `unauthorized`
before the body is read, so nothing is recorded. Error bodies are the product's
`{"error": code, "message": …}` (entrypoints/errors.py): 422 `invalid_transaction_id` /
`invalid_request` (fields named, inputs never echoed), 401 `unauthorized`, and the kit's own
answers (`core`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, SecretStr, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.participant_kit.core import ParticipantService, Refusal
from repository_after.participant_kit.records import Answer, error_body
from repository_after.service_layer.ports import StorageError

logger = logging.getLogger(__name__)

#: The account service's bound (`domain.accounts.MAX_BATCH`): what the orchestrator batches.
MAX_BATCH = 128
REPLAYED = "Idempotent-Replayed"
_ITEM_FIELDS = ("operation", "transaction_id", "traceparent")
_JSON = "application/json"


def _json(status_code: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=_JSON)


def respond(answer: Answer) -> Response:
    headers = {REPLAYED: "true"} if answer.replayed else None
    return Response(answer.body, status_code=answer.status_code, headers=headers, media_type=_JSON)


def validation_details(
    exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)
) -> list[dict[str, object]]:
    """What was wrong and where, never the input itself."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_input=False, include_url=False)
    ]


def invalid_request(details: list[dict[str, object]]) -> Response:
    return _json(
        422, {**error_body("invalid_request", "the request is invalid"), "details": details}
    )


def _bad_key() -> Response:
    return _json(
        422,
        error_body(
            "invalid_transaction_id",
            "header 'transaction-id' is required: 1-128 characters of letters, digits, '.', "
            "'_', ':' or '-'",
        ),
    )


def bearer_matches(token: SecretStr, authorization: str | None) -> bool:
    """Whether `authorization` is exactly `Bearer <token>`, in constant time (the time says
    nothing of how much matched): every bearer check of sagabank (`entrypoints.deps` too)."""
    expected = f"Bearer {token.get_secret_value()}".encode()
    given = (authorization or "").encode("utf-8", "surrogateescape")
    return secrets.compare_digest(given, expected)


def bearer_guard(token: SecretStr | None) -> Callable[[Request], Response | None]:
    """None when the request may pass; else the 401 answer. No token configured: all pass."""

    def check(request: Request) -> Response | None:
        if token is None or bearer_matches(token, request.headers.get("authorization")):
            return None
        return _json(401, error_body("unauthorized", "this endpoint requires the service token"))

    return check


async def _read_json(request: Request) -> tuple[bool, object]:
    raw = await request.body()
    if not raw.strip():
        return True, None
    try:
        return True, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, None


def _malformed() -> Response:
    return invalid_request([{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}])


def participant_router(
    service: ParticipantService, *, token: SecretStr | None = None, max_batch: int = MAX_BATCH
) -> APIRouter:
    router = APIRouter(tags=[service.name])
    guard = bearer_guard(token)

    def endpoint(operation: str) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            if (refused := guard(request)) is not None:
                return refused
            key = request.headers.get("transaction-id")
            if key is None or TRANSACTION_ID_PATTERN.fullmatch(key) is None:
                return _bad_key()
            ok, raw = await _read_json(request)
            if not ok:
                return _malformed()
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
            response_class=Response,
        )

    async def batch(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        ok, raw = await _read_json(request)
        if not ok:
            return _malformed()
        items = _batch_items(service, raw, max_batch)
        if isinstance(items, Response):
            return items
        answers = await asyncio.gather(*(service.perform(op, k, b) for op, k, b in items))
        results = [
            {
                "status_code": a.status_code,
                "body": orjson.Fragment(a.body),
                "replayed": a.replayed,
            }
            for a in answers
        ]
        return _json(200, {"results": results})

    router.add_api_route("/batch", batch, methods=["POST"], response_class=Response)

    async def health() -> Response:
        try:
            await service.store.read(lambda tx: tx.execute("SELECT 1"))
        except Exception:
            return _json(503, {"status": "unavailable", "service": service.name})
        return _json(200, {"status": "ok", "service": service.name})

    router.add_api_route("/health", health, methods=["GET"], response_class=Response)
    return router


def participant_reads(service: ParticipantService) -> APIRouter:
    """The kit's reads (`GET /faults`), without a guard: include it behind your read guard."""
    router = APIRouter(tags=[service.name])

    async def faults() -> Response:
        return _json(200, {"service": service.name, **service.faults.view()})

    router.add_api_route("/faults", faults, methods=["GET"], response_class=Response)
    return router


def _batch_items(
    service: ParticipantService, raw: object, max_batch: int
) -> list[tuple[str, str, BaseModel | None]] | Response:
    """Every item validated (operation, key, body), or the 422 that refuses the whole batch."""
    operations = raw.get("operations") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or set(raw) != {"operations"} or not isinstance(operations, list):
        return invalid_request(
            [{"loc": ["body"], "msg": "expected {'operations': [...]}", "type": "batch_shape"}]
        )
    if not 1 <= len(operations) <= max_batch:
        return invalid_request(
            [
                {
                    "loc": ["body", "operations"],
                    "msg": f"a batch holds 1 to {max_batch} operations",
                    "type": "batch_size",
                }
            ]
        )
    items: list[tuple[str, str, BaseModel | None]] = []
    details: list[dict[str, object]] = []
    for i, item in enumerate(operations):
        where = ("body", "operations", i)
        if not isinstance(item, dict):
            details.append({"loc": list(where), "msg": "expected an object", "type": "dict_type"})
            continue
        operation, key = item.get("operation"), item.get("transaction_id")
        traceparent = item.get("traceparent")
        problems = []
        if not isinstance(operation, str) or operation not in service.operations:
            problems.append(("operation", "unknown operation", "operation"))
        if not isinstance(key, str) or TRANSACTION_ID_PATTERN.fullmatch(key) is None:
            problems.append(("transaction_id", "invalid transaction id", "transaction_id"))
        if traceparent is not None and not (
            isinstance(traceparent, str) and len(traceparent) <= 256
        ):
            problems.append(("traceparent", "invalid traceparent", "traceparent"))
        if problems:
            details.extend({"loc": [*where, f], "msg": m, "type": t} for f, m, t in problems)
            continue
        assert isinstance(operation, str)
        assert isinstance(key, str)
        fields = {k: v for k, v in item.items() if k not in _ITEM_FIELDS}
        try:
            body = service.parse(operation, fields or None)
        except ValidationError as exc:
            details.extend(validation_details(exc, where))
            continue
        items.append((operation, key, body))
    if details:
        return invalid_request(details)
    return items


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
