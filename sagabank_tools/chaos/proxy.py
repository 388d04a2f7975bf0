"""The fault-injecting HTTP proxy between the orchestrator and the account service's process.

A Starlette app served by uvicorn inside the chaos process (`serving.py`), forwarding with an
`httpx.AsyncClient`; the proxy itself only decides faults. The process behind it serves the
account service at `/` and hosts the order saga's participants under `/inventory` and `/orders`
(`config.HOSTED_PARTICIPANTS`), where the orchestrator reaches them by default, so one proxy
stands in front of all three. A `POST` of a saga operation (`OPERATIONS`: every action,
compensation and settlement of the built-in sagas, at its path: `/credit`, `/inventory/reserve`,
`/orders/cancel`) with a `transaction-id` is numbered per (transaction id, operation) and its
fate is asked of the `Schedule`; a `POST /batch` (also `/inventory/batch`, `/orders/batch`) is
split into such operations (`_unbatch`); everything else (`/health`, reads) passes untouched.

- credit-before / reserve-before: answer 500 `injected_fault` without forwarding (nothing was
  applied);
- credit-after / reserve-after: forward, wait for the answer, drop it and answer 500 (the lost
  response);
- delay: hold the request `delay` seconds, then forward it anyway — the orchestrator timed out
  long ago, so it lands late (after a retry, a compensation or a void). Recorded in `late`;
- duplicate: forward the request twice concurrently, answer with the first reply.

`on_answer` (optional) is awaited with (transaction id, operation, reply) once the account
service has answered a delivery the schedule left alone, before that answer goes back: a test can
hold answers there, so that it knows calls are in flight (applied by the account service, not yet
heard by the orchestrator) and can kill the orchestrator at that moment.

Invariant: a request the proxy accepted is delivered (or tried) even if the client is gone. Every
delivery runs in a task the proxy owns (`_track`), awaited through `asyncio.shield`, so cancelling
the request's handler never cancels a delivery; `drain()` waits for every such task, so the books
are quiet before the audit.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from repository_after.config import HOSTED_PARTICIPANTS
from repository_after.domain.sagas import DEFINITIONS
from sagabank_tools.chaos.messages import Reply, Request, error_reply
from sagabank_tools.chaos.schedule import AFTER, BEFORE, NO_FAULT, Family, Schedule
from sagabank_tools.chaos.serving import LoopbackServer

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: Every operation a built-in saga calls, named by its path without the leading slash.
OPERATIONS = frozenset(
    f"{HOSTED_PARTICIPANTS.get(step.service, '')}/{operation}".lstrip("/")
    for definition in DEFINITIONS.values()
    for step in definition.steps
    for operation in (step.action, step.compensation, step.settlement)
    if operation is not None
)
_BATCH = "/batch"
_PASSED_HEADERS = ("content-type", "transaction-id", "authorization", "traceparent")
#: What a batch item says in its own fields and its single request says in headers.
_ITEM_HEADERS = ("transaction_id", "traceparent")

#: Awaited with (transaction id, operation, the account service's reply) before the reply is sent.
AnswerHook = Callable[[str, str, Reply], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LateDelivery:
    """A delayed request and what the account service answered when it finally arrived."""

    transaction_id: str
    operation: str
    delivery: int
    held: float
    forwarded_at: str  # UTC ISO time the request left the proxy, comparable with saga attempts
    status: int
    error: str | None
    replayed: bool


def _single(item: dict[str, Any], prefix: str, authorization: str | None) -> Request:
    """The single request a batch item stands for (at `prefix`, the batch's own: `/inventory`
    for `/inventory/batch`): its id and trace context become headers, and it carries the
    batch's credential (the service token), as the batch did."""
    headers = {"content-type": "application/json", "transaction-id": item["transaction_id"]}
    if authorization is not None:
        headers["authorization"] = authorization
    if isinstance(item.get("traceparent"), str):
        headers["traceparent"] = item["traceparent"]
    body = {k: v for k, v in item.items() if k != "operation" and k not in _ITEM_HEADERS}
    return Request("POST", f"{prefix}/{item['operation']}", headers, json.dumps(body).encode())


class FaultProxy:
    def __init__(
        self, *, schedule: Schedule, upstream: str, on_answer: AnswerHook | None = None
    ) -> None:
        self._schedule = schedule
        self._on_answer = on_answer
        self._client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(15.0))
        self._deliveries: Counter[tuple[str, str]] = Counter()
        self._pending: set[asyncio.Task[Reply]] = set()
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=_METHODS)])
        self._server = LoopbackServer(app)
        self.counts: Counter[Family] = Counter()
        self.targets: Counter[tuple[Family, str]] = Counter()  # (family, operation) injected
        self.late: list[LateDelivery] = []
        self.batched = 0  # operations that arrived inside a `POST /batch`
        self.url = ""

    async def start(self) -> str:
        self.url = await self._server.start()
        return self.url

    async def drain(self, timeout: float) -> bool:
        """Wait for held and duplicated deliveries; True if none is left."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(set(self._pending), timeout=1.0)
        return not self._pending

    async def close(self) -> None:
        # The server first: a handler still waiting on a delivery gets its answer (or is cut off
        # after the grace period); only then are deliveries left over cancelled.
        await self._server.stop()
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._client.aclose()

    async def _endpoint(self, http: HttpRequest) -> Response:
        target = http.url.path + (f"?{http.url.query}" if http.url.query else "")
        request = Request(http.method, target, dict(http.headers), await http.body())
        reply = await self._handle(request)
        replayed = {"idempotent-replayed": "true"} if reply.replayed else None
        return Response(reply.body, reply.status, replayed, media_type="application/json")

    async def _handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path.endswith(_BATCH):
            return await self._unbatch(request)
        return await self._handle_one(request)

    async def _unbatch(self, request: Request) -> Reply:
        """A batch is split into its operations, each faulted and forwarded exactly like a
        single request (so every fault family reaches batched calls too); their replies are put
        back together in order. A held (delayed) item holds the whole batch's answer past the
        orchestrator's timeout, so every item of that batch is unknown to it and retried."""
        try:
            items = json.loads(request.body)["operations"]
            authorization = request.headers.get("authorization")
            prefix = request.path.removesuffix(_BATCH)
            singles = [_single(item, prefix, authorization) for item in items]
        except (ValueError, KeyError, TypeError):
            return await self._handle_one(request)  # the account service answers it (422)
        self.batched += len(singles)
        replies = await asyncio.gather(*(self._handle_one(r) for r in singles))
        results = [
            {"status_code": r.status, "body": json.loads(r.body), "replayed": r.replayed}
            for r in replies
        ]
        return Reply(200, json.dumps({"results": results}).encode())

    async def _handle_one(self, request: Request) -> Reply:
        operation = request.path.lstrip("/")
        tx_id = request.headers.get("transaction-id", "")
        fault, delivery = NO_FAULT, 0
        if request.method == "POST" and operation in OPERATIONS and tx_id:
            self._deliveries[(tx_id, operation)] += 1
            delivery = self._deliveries[(tx_id, operation)]
            fault = self._schedule.proxy_fault(tx_id, operation, delivery)
        if fault.family is not None:
            self.counts[fault.family] += 1
            self.targets[fault.family, operation] += 1
        if fault.family in BEFORE:
            return error_reply(
                500, "injected_fault", f"chaos: {operation} failed before the change"
            )
        if fault.family is Family.DELAY:
            late = self._late(request, fault.delay, tx_id, operation, delivery)
            return await asyncio.shield(self._track(late))
        if fault.family is Family.DUPLICATE:
            first, _ = await asyncio.gather(
                asyncio.shield(self._track(self._forward(request))),
                asyncio.shield(self._track(self._forward(request))),
            )
            return first
        reply = await asyncio.shield(self._track(self._forward(request)))
        if fault.family in AFTER:
            return error_reply(500, "injected_fault", f"chaos: {operation} applied, answer lost")
        if self._on_answer is not None and delivery:
            await self._on_answer(tx_id, operation, reply)
        return reply

    def _track(self, coro: Coroutine[Any, Any, Reply]) -> asyncio.Task[Reply]:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _late(
        self, request: Request, delay: float, tx_id: str, operation: str, delivery: int
    ) -> Reply:
        await asyncio.sleep(delay)  # the fault itself: hold the request past the client's timeout
        forwarded_at = datetime.now(UTC).isoformat(timespec="microseconds")
        reply = await self._forward(request)
        self.late.append(
            LateDelivery(
                tx_id,
                operation,
                delivery,
                delay,
                forwarded_at,
                reply.status,
                reply.error,
                reply.replayed,
            )
        )
        return reply

    async def _forward(self, request: Request) -> Reply:
        headers = {k: v for k, v in request.headers.items() if k in _PASSED_HEADERS}
        try:
            response = await self._client.request(
                request.method, request.path, content=request.body, headers=headers
            )
        except httpx.TimeoutException:
            return error_reply(504, "gateway_timeout", "chaos proxy: the account service timed out")
        except httpx.TransportError:
            return error_reply(
                502, "bad_gateway", "chaos proxy: the account service is unreachable"
            )
        replayed = response.headers.get("idempotent-replayed") == "true"
        return Reply(response.status_code, response.content, replayed)
