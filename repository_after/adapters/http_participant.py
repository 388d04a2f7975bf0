"""HTTP adapter of the `Participant` port, over one pool of keep-alive connections per process
(`http_transport.HttpTransport`).

The client library was chosen by measurement (docs/performance.md): httpx first, whose pool
cost more orchestrator CPU than everything else together; then aiohttp; now a lean HTTP/1.1
client on httptools, which costs about half of aiohttp's CPU per exchange. The tests run it
against real loopback sockets (tests/unit/test_participant_transport.py, test_http_transport.py).

Classification of one attempt (the outcome rules of the README):
    2xx with a JSON object body         -> SUCCEEDED
    4xx except 408 / 429                -> REJECTED   (a definite business answer)
    408, 429, 5xx                       -> UNKNOWN    (may or may not have been applied)
    timeout, connection error, bad body -> UNKNOWN
Every request carries the saga id in the `transaction-id` header and an explicit timeout, and
the current trace context as W3C `traceparent` (nothing when tracing is off); inside a batch,
each item carries its own call's id and `traceparent`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.propagate import inject

from repository_after.adapters.http_transport import HttpTransport, TransportError
from repository_after.domain.accounts import MAX_BATCH
from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult

_RETRYABLE_4XX = frozenset({408, 429})


def classify(code: int, raw: bytes) -> CallResult:
    try:
        # orjson refuses a few texts the standard library reads (NaN, a BOM): such an answer
        # is "unreadable", an unknown outcome, which a retry with the same key settles.
        body = orjson.loads(raw)
    except ValueError:
        body = None
    return classify_body(code, body)


def classify_body(code: int, body: object) -> CallResult:
    if not isinstance(body, dict):
        body = None
    error = body.get("error") if body else None
    if 200 <= code < 300:
        if body is None:
            return CallResult(Outcome.UNKNOWN, code, "unreadable_body")
        return CallResult(Outcome.SUCCEEDED, code, None, body)
    if 400 <= code < 500 and code not in _RETRYABLE_4XX:
        return CallResult(Outcome.REJECTED, code, str(error or f"http_{code}"), body)
    return CallResult(Outcome.UNKNOWN, code, str(error or f"http_{code}"), body)


def _traceparent() -> str | None:
    if not trace.get_current_span().get_span_context().is_valid:
        return None  # no trace (tracing off): skip the propagator, 2.8 µs per call
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


@dataclass(slots=True)
class _Queued:
    operation: str
    transaction_id: str
    body: dict[str, Any]
    timeout: float
    future: asyncio.Future[CallResult]
    traceparent: str | None  # the calling saga step's trace context, taken when it called


@dataclass(slots=True)
class _Lane:
    """The calls to one service: how many HTTP exchanges are in flight, and who waits."""

    in_flight: int = 0
    queued: list[_Queued] = field(default_factory=list)
    gathering: bool = False  # a lone call is waiting one turn of the loop for company


class HttpParticipant:
    """`batching`: at most `max_in_flight` exchanges per service. A call that finds one free
    waits one turn of the event loop, and the calls made in that turn leave with it as one
    `POST /batch` (alone, it goes as its own request). A call that finds them all busy waits,
    and when one ends the waiting calls leave together as one batch. So calls batch only under
    load, the way group commit shares one fsync: the sagas that one group commit wakes call
    in the same turn. A batch that fails as a whole (timeout, connection, non-200) leaves every
    item's outcome unknown; each is then retried with its own key."""

    def __init__(
        self,
        services: Mapping[str, str],
        *,
        max_connections: int = 64,
        batching: bool = True,
        max_in_flight: int = 4,
    ) -> None:
        self._services = {name: url.rstrip("/") for name, url in services.items()}
        self._max_connections = max_connections
        self._transport: HttpTransport | None = None
        self._batching = batching
        self._max_in_flight = max_in_flight
        self._lanes = {name: _Lane() for name in services}
        self._batches: set[asyncio.Task[None]] = set()

    def _open(self) -> HttpTransport:
        # Made on first use, inside the event loop that will use it (idle connections are
        # dropped before the server's keep-alive ends them: `KEEPALIVE_SECONDS`).
        self._transport = HttpTransport(limit=self._max_connections)
        return self._transport

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        if not self._batching:
            return await self._single(service, operation, transaction_id, body, timeout)
        lane = self._lanes[service]
        leads = lane.in_flight < self._max_in_flight and not lane.queued and not lane.gathering
        if leads:
            # One turn of the event loop first: the sagas that a group commit has just woken
            # all call in this turn, and those calls leave with this one, as one batch.
            lane.gathering = True
            try:
                await asyncio.sleep(0)
            except BaseException:  # cancelled: the calls that joined meanwhile go without it
                lane.gathering = False
                self._flush(service, lane)
                raise
            lane.gathering = False
            if not lane.queued:  # alone after all: its own request
                lane.in_flight += 1
                try:
                    return await self._single(service, operation, transaction_id, body, timeout)
                finally:
                    lane.in_flight -= 1
                    self._flush(service, lane)
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        item = _Queued(operation, transaction_id, body, timeout, future, _traceparent())
        if leads:  # company came: everyone leaves now, as one batch, this call first
            lane.queued.insert(0, item)
            self._flush(service, lane)
        else:
            lane.queued.append(item)
        return await future

    def _flush(self, service: str, lane: _Lane) -> None:
        while lane.in_flight < self._max_in_flight:
            # A caller that gave up (cancelled) is not sent: "never sent" is a safe outcome.
            waiting = [q for q in lane.queued if not q.future.done()]
            if not waiting:
                lane.queued = []
                return
            items, lane.queued = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
            lane.in_flight += 1
            task = asyncio.create_task(self._batch(service, lane, items))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _batch(self, service: str, lane: _Lane, items: list[_Queued]) -> None:
        try:
            try:
                results = await self._post_batch(service, items)
            except Exception as exc:  # whatever broke, the callers learn "unknown", not an error
                failed = CallResult(Outcome.UNKNOWN, None, f"transport: {type(exc).__name__}")
                results = [failed] * len(items)
            for item, result in zip(items, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            for item in items:  # cancelled (shutdown): the callers stop waiting
                if not item.future.done():
                    item.future.cancel()
            lane.in_flight -= 1
            self._flush(service, lane)

    async def _post(
        self, url: str, payload: object, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes] | CallResult:
        transport = self._transport or self._open()
        headers["content-type"] = "application/json"
        try:
            # A 3xx is not followed: it is not an answer, so the outcome is unknown.
            return await transport.post(url, orjson.dumps(payload), headers, timeout)
        except TimeoutError:
            return CallResult(Outcome.UNKNOWN, None, "timeout")
        except TransportError as exc:
            return CallResult(Outcome.UNKNOWN, None, f"transport: {exc.kind}")
        except OSError as exc:  # a socket error the transport did not name: still unknown
            return CallResult(Outcome.UNKNOWN, None, f"transport: {type(exc).__name__}")

    async def _single(
        self,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        headers = {"transaction-id": transaction_id}
        inject(headers)
        answer = await self._post(f"{self._services[service]}/{operation}", body, headers, timeout)
        return answer if isinstance(answer, CallResult) else classify(*answer)

    async def _post_batch(self, service: str, items: list[_Queued]) -> list[CallResult]:
        operations = []
        for i in items:
            operation = {"operation": i.operation, "transaction_id": i.transaction_id, **i.body}
            if i.traceparent is not None:
                operation["traceparent"] = i.traceparent
            operations.append(operation)
        payload = {"operations": operations}
        timeout = min(i.timeout for i in items)
        answer = await self._post(f"{self._services[service]}/batch", payload, {}, timeout)
        if isinstance(answer, CallResult):
            return [answer] * len(items)
        code, raw = answer
        try:
            results = orjson.loads(raw)["results"] if code == 200 else None
            if not isinstance(results, list) or len(results) != len(items):
                raise ValueError("no result per item")
            return [classify_body(int(r["status_code"]), r["body"]) for r in results]
        except (ValueError, KeyError, TypeError):
            # The batch as a whole failed: nothing is known of any item, never "rejected".
            error = classify(code, raw).error if code != 200 else "unreadable_body"
            return [CallResult(Outcome.UNKNOWN, code, f"batch: {error}")] * len(items)

    async def close(self) -> None:
        for task in list(self._batches):
            task.cancel()
        await asyncio.gather(*self._batches, return_exceptions=True)
        if self._transport is not None:
            await self._transport.close()
