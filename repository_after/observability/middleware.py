"""One pure-ASGI middleware for every HTTP request: transaction id, server span, HTTP metrics.

Pure ASGI rather than `BaseHTTPMiddleware` so server-sent event streams pass through untouched.
Per request it
- puts a valid `transaction-id` header into `context.current_transaction_id` (log lines),
- continues the caller's W3C trace (`traceparent`) with a SERVER span when tracing is on,
- counts the request by method, route template (never the raw path: bounded label values) and
  status, times it (except event streams, which last as long as the client stays), and counts
  idempotent replays (answers carrying `Idempotent-Replayed: true`).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repository_after.domain.ids import is_valid_transaction_id
from repository_after.observability.context import current_transaction_id
from repository_after.observability.metrics import Labelled


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "sagabank_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "sagabank_http_request_duration_seconds",
            "Time to answer an HTTP request (event streams excluded).",
            ["method", "route"],
            registry=registry,
        )
        self.replays = Counter(
            "sagabank_idempotent_replays",
            "Operations answered by replaying the first answer for their transaction id, by the"
            " route of their single endpoint (batched ones too).",
            ["route"],
            registry=registry,
        )
        self.requests_by = Labelled(self.requests)
        self.seconds_by = Labelled(self.seconds)
        self.replays_by = Labelled(self.replays)


def _route(scope: Scope) -> str:
    """The matched route's template, with the prefix of the router it was included under.

    FastAPI (0.165) keeps an included router as one node: `scope["route"].path` of
    `/inventory/batch` is `/batch`, the account service's own `/batch` too. The prefix is the
    part of the request's path before the shortest tail the route's pattern matches (the whole
    path for a route of the app itself, so most requests match at once)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    pattern = getattr(route, "path_regex", None)
    requested: str = scope.get("path", "")
    if requested == path or pattern is None or pattern.match(requested):
        return path  # a route of the app itself (the first test spares a regex per request)
    cut = requested.find("/", 1)
    while cut > 0:
        if pattern.match(requested[cut:]):
            return requested[:cut] + path
        cut = requested.find("/", cut + 1)
    return path


class ObservabilityMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: HttpMetrics, tracer: trace.Tracer | None = None
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tx_id = None
        for name, value in scope["headers"]:
            if name == b"transaction-id":
                tx_id = value.decode("latin-1")
        token = current_transaction_id.set(
            tx_id if tx_id and is_valid_transaction_id(tx_id) else None
        )
        answer: dict[str, Any] = {"status": 500, "stream": False, "replayed": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    name = key.decode("latin-1").lower()
                    if name == "content-type":
                        answer["stream"] = value.startswith(b"text/event-stream")
                    elif name == "idempotent-replayed":
                        answer["replayed"] = value == b"true"
            await send(message)

        began = time.perf_counter()
        method = scope["method"]
        try:
            if self._tracer is None:
                await self.app(scope, receive, capture)
            else:
                await self._traced(scope, receive, capture, answer)
        finally:
            current_transaction_id.reset(token)
            route = _route(scope)
            metrics = self._metrics
            metrics.requests_by(method, route, str(answer["status"])).inc()
            if not answer["stream"]:
                metrics.seconds_by(method, route).observe(time.perf_counter() - began)
            if answer["replayed"]:
                metrics.replays_by(route).inc()

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        answer: dict[str, Any],
    ) -> None:
        assert self._tracer is not None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        with self._tracer.start_as_current_span(
            f"{method} {scope['path']}",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
            record_exception=True,
        ) as span:
            tx_id = current_transaction_id.get()
            if tx_id:
                span.set_attribute("sagabank.transaction_id", tx_id)
            await self.app(scope, receive, send)
            route = _route(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", answer["status"])
            if answer["status"] >= 500:
                span.set_status(Status(StatusCode.ERROR))
