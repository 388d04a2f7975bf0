"""Hot routes: the endpoints every transfer goes through, dispatched without FastAPI's per-request
machinery, to the very same route functions.

Per request FastAPI matches routes, solves dependencies, and runs its body parsing and exception
wrappers. For `POST /transfers` on the orchestrator, and `POST /batch`, `/debit`, `/credit`,
`/compensate_debit` and `/void_credit` on the account service (the list is `app.hot_routes`),
that machinery cost more CPU than the route itself (docs/performance.md).
Here a well-formed request is parsed with the route's own model, and the route function is
called directly. Everything else goes on to FastAPI, untouched: a body that does not validate, a
bad or missing header, any other content type. So every refusal keeps FastAPI's exact answer, and
only a request FastAPI would accept takes the short way.

This is the innermost middleware: request limits, the transaction-id log context, metrics and
tracing see hot requests as they see any other (`scope["route"]` is set as the router would).
An exception raised by the route function is answered by the app's own exception handlers,
looked up as Starlette does; one without a handler propagates to the server-error middleware.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repository_after.domain.money import TRANSACTION_ID_PATTERN

#: (request, validated body, transaction id or None) -> the route function's response.
Endpoint = Callable[[Request, Any, str | None], Awaitable[Response]]


class HotRoute:
    def __init__(
        self, route: APIRoute, model: type[BaseModel], endpoint: Endpoint, *, needs_id: bool
    ) -> None:
        self.route = route  # FastAPI's route for the same endpoint
        self.model = model
        self.endpoint = endpoint
        self.needs_id = needs_id  # a missing `transaction-id` header goes to FastAPI (422)

    def parse(self, scope: Scope, body: bytes) -> tuple[Any, str | None] | None:
        """(validated body, transaction id), or None when FastAPI should answer instead."""
        content_type: bytes | None = None
        tx_ids = []
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"transaction-id":
                tx_ids.append(value)
        if content_type is None or content_type.split(b";")[0].strip() != b"application/json":
            return None
        if len(tx_ids) > 1 or (self.needs_id and not tx_ids):
            return None
        tx_id = tx_ids[0].decode("latin-1") if tx_ids else None
        if tx_id is not None and not TRANSACTION_ID_PATTERN.fullmatch(tx_id):
            return None
        try:
            # orjson is stricter than FastAPI's `json.loads` (no NaN, no BOM, no lone surrogates;
            # integers beyond 64 bits become floats, which no model field accepts): whatever it
            # refuses goes to FastAPI, which answers as it always does.
            return self.model.model_validate(orjson.loads(body)), tx_id
        except Exception:  # bad JSON (even too deeply nested), invalid: FastAPI's own answer
            return None


def api_route(router: APIRouter, method: str, path: str) -> APIRoute:
    """The route `router` declares for `method` and `path`."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ()):
            return route
    raise LookupError(f"no {method} {path} route")


class HotRoutes:
    def __init__(self, app: ASGIApp, *, routes: Mapping[tuple[str, str], HotRoute]) -> None:
        self.app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope.get("method", ""), scope.get("path", ""))
        route = self._routes.get(key) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route.route  # as the router would set it (metrics label by template)
        request = Request(scope, receive)
        try:
            body = await request.body()
        except Exception as exc:  # e.g. the request limits' 413 while streaming the body
            await self._answer_error(scope, receive, send, request, exc)
            return
        parsed = route.parse(scope, body)
        if parsed is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            response = await route.endpoint(request, *parsed)
        except Exception as exc:
            await self._answer_error(scope, receive, send, request, exc)
            return
        await response(scope, receive, send)

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, request: Request, exc: Exception
    ) -> None:
        handlers: dict[Any, Callable[..., Any]] = scope["app"].exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                break  # the catch-all handler belongs to the server-error middleware
            if cls in handlers:
                response = handlers[cls](request, exc)  # ours are plain functions, no I/O
                if inspect.isawaitable(response):
                    response = await response
                await response(scope, receive, send)
                return
        raise exc


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the body already read, then whatever comes next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
