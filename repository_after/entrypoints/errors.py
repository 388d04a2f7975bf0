"""The one table that maps errors to HTTP answers. No stack trace or SQL ever reaches a client.

RequestValidationError  -> 422 invalid_request (fields named, inputs not echoed)
BadRequest              -> its own status and code (e.g. a malformed transaction-id header)
BusinessError           -> its http_status and code (see domain.errors)
StorageError            -> 503 storage_unavailable (outcome unknown: retry with the same id)
SagaNotFound            -> 404 transfer_not_found
InvalidTransition       -> 409 invalid_transition (e.g. retrying a saga that is not parked)
StarletteHTTPException  -> its status, code derived from it
anything else           -> 500 internal_error (logged with its traceback, never sent)
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from repository_after.domain.errors import BusinessError, error_body
from repository_after.domain.saga import InvalidTransition
from repository_after.service_layer.orchestrator import SagaNotFound
from repository_after.service_layer.ports import StorageError

logger = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, code: str, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.code, self.message, self.status_code = code, message, status_code


def error_response(status_code: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({**error_body(code, message), **extra}, status_code=status_code)


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    if any(d["loc"][:2] == ["header", "transaction-id"] for d in details):
        return error_response(
            422,
            "invalid_transaction_id",
            "header 'transaction-id' is required: 1-128 characters of letters, digits, '.', "
            "'_', ':' or '-'",
        )
    return error_response(422, "invalid_request", "the request is invalid", details=details)


def _bad_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadRequest)
    return error_response(exc.status_code, exc.code, exc.message)


def _business(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BusinessError)
    return error_response(exc.http_status, exc.code, exc.message)


def _storage(_: Request, exc: Exception) -> JSONResponse:
    logger.error("storage failure: %s", exc)
    return error_response(503, "storage_unavailable", "storage is unavailable; retry later")


def _saga_not_found(_: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "transfer_not_found", f"no transfer {exc.args[0]!r}")


def _invalid_transition(_: Request, exc: Exception) -> JSONResponse:
    return error_response(409, "invalid_transition", str(exc))


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {
        404: "not_found",
        405: "method_not_allowed",
        401: "unauthorized",
        413: "body_too_large",
        400: "malformed_body",
    }.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(BusinessError, _business)
    app.add_exception_handler(StorageError, _storage)
    app.add_exception_handler(SagaNotFound, _saga_not_found)
    app.add_exception_handler(InvalidTransition, _invalid_transition)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
