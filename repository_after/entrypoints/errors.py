"""The one table that maps errors to HTTP answers. No stack trace or SQL ever reaches a client.

RequestValidationError  -> 422 invalid_request (fields named, inputs not echoed), or
                           422 invalid_transaction_id when the `transaction-id` header is at fault
BadRequest              -> its own status and code (e.g. the admin guard's 401)
BusinessError           -> its http_status and code (see domain.errors), e.g. 422 same_account
InjectedFault           -> 500 injected_fault (the configured fault of `/credit`)
StorageError            -> 503 storage_unavailable (outcome unknown: retry with the same id)
SagaNotFound            -> 404 transfer_not_found (`/sagas/...` answers 404 saga_not_found itself)
UnknownSagaType         -> 404 saga_type_not_found
DefinitionsChanged      -> 409 definition_changed (a saga another server started under another
                           shape of its type's version: named with both hashes; `sagas show`
                           reads it from the log alone)
VersionNotRegistered    -> 409 version_not_registered (a saga that exists, of a type's version
                           this server does not register: never a 404 "no such saga")
Refusal                 -> its http_status and code (a hosted participant's refusal, e.g. 409
                           stock_limit_exceeded on `/inventory/stock`)
InvalidTransition       -> 409 invalid_transition (e.g. retrying a saga that is not parked)
StarletteHTTPException  -> its status, code derived from it
anything else           -> 500 internal_error (logged with its traceback, never sent)

`answer_for` reads the table for callers that answer an error inside a larger answer (an item
of `/batch` answers exactly what its single endpoint's handler would); `install_error_handlers`
registers it as the app's exception handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from repository_after.domain.accounts import Reply
from repository_after.domain.errors import BusinessError, error_body
from repository_after.domain.saga import InvalidTransition
from repository_after.participant_kit.core import Refusal
from repository_after.service_layer.account_operations import InjectedFault
from repository_after.service_layer.orchestrator import SagaNotFound
from repository_after.service_layer.ports import StorageError
from repository_after.service_layer.saga_types import (
    DefinitionsChanged,
    UnknownSagaType,
    VersionNotRegistered,
)

logger = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, code: str, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.code, self.message, self.status_code = code, message, status_code


def _validation(exc: RequestValidationError) -> Reply:
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    if any(d["loc"][:2] == ["header", "transaction-id"] for d in details):
        return _reply(
            422,
            "invalid_transaction_id",
            "header 'transaction-id' is required: 1-128 characters of letters, digits, '.', "
            "'_', ':' or '-'",
        )
    return _reply(422, "invalid_request", "the request is invalid", details=details)


def _storage(exc: StorageError) -> Reply:
    logger.error("storage failure: %s", exc)  # the driver's words stay in the log
    return _reply(503, "storage_unavailable", "storage is unavailable; retry later")


_HTTP_CODES = {
    400: "malformed_body",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def _http(exc: StarletteHTTPException) -> Reply:
    return _reply(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))


#: The table: an error class and how it is answered. The handlers are registered from it, so a
#: class is answered the same way alone and inside a batch, and cannot be in one and not the other.
_TABLE: dict[type[Exception], Callable[[Any], Reply]] = {
    BusinessError: lambda e: _reply(e.http_status, e.code, e.message),
    InjectedFault: lambda e: _reply(500, "injected_fault", str(e)),
    RequestValidationError: _validation,
    BadRequest: lambda e: _reply(e.status_code, e.code, e.message),
    StorageError: _storage,
    SagaNotFound: lambda e: _reply(404, "transfer_not_found", f"no transfer {e.args[0]!r}"),
    UnknownSagaType: lambda e: _reply(404, "saga_type_not_found", str(e.args[0])),
    DefinitionsChanged: lambda e: _reply(409, "definition_changed", e.one_line()),
    VersionNotRegistered: lambda e: _reply(409, "version_not_registered", str(e.args[0])),
    Refusal: lambda e: _reply(e.http_status, e.code, e.message),
    InvalidTransition: lambda e: _reply(409, "invalid_transition", str(e)),
    StarletteHTTPException: _http,
}


def answer_for(exc: Exception) -> Reply | None:
    """The table's answer to `exc` (its most specific class in the table); None for an error it
    does not know (answered 500)."""
    for cls in type(exc).__mro__:
        if (build := _TABLE.get(cls)) is not None:
            return build(exc)
    return None


def _reply(status_code: int, code: str, message: str, **extra: object) -> Reply:
    return Reply(status_code, {**error_body(code, message), **extra})


def error_response(status_code: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({**error_body(code, message), **extra}, status_code=status_code)


def _answer(_: Request, exc: Exception) -> JSONResponse:
    reply = answer_for(exc)
    if reply is None:  # registered only for the classes the table knows
        raise exc
    return JSONResponse(reply.body, status_code=reply.status_code)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    for cls in _TABLE:
        app.add_exception_handler(cls, _answer)
    app.add_exception_handler(Exception, _unexpected)
