"""HTTP adapter of the `Participant` port: `httpx.AsyncClient` over one pool of keep-alive
connections per process. The transport under the client is the seam (tests give respx's mock
or a transport of their own); by default it is `httpx-aiohttp`'s `AiohttpTransport`.

Why that transport: measured against httpx's own (httpcore) by
`scripts/bench_participant_transport.py` (2,000 POSTs at 32 in flight against a uvicorn app on
loopback, both in one run, 3 repetitions, medians, uvloop): httpx-aiohttp 229 µs of client CPU
per POST and 2,881 POSTs/s; httpcore 1,585 µs and 559/s (its pool's bookkeeping grows with the
requests waiting on it). A second run, on a busier machine: 386 against 1,498 µs at 32 in
flight, 412 against 656 µs at 4 (`--concurrency 4`). httpx's own pool also failed one of
the safety tests: a second, unasked answer sent right behind the first was taken as the next
request's answer. The transport needs aiohttp, which therefore stays a runtime dependency.

The one rule that keeps money safe: an answer is never taken for another request's. The
transport (`participant_transport`) reuses a connection only after its whole answer was read
and nothing else arrived, also while it sat idle in the pool; an exchange that times out, is
cancelled or leaves its answer unread (too large) closes its connection, so a late answer dies
with it (shown against real loopback servers in tests/unit/test_http_transport.py).
Interim answers (1xx) are read past; redirects are not followed (a 3xx is not an answer).
`https://` verifies the server against the system's trust store; no proxy from the
environment is used.

Classification of one attempt (the outcome rules of the README):
    2xx with a JSON object body         -> SUCCEEDED
    4xx except 408 / 429                -> REJECTED   (a definite business answer)
    408, 429, 5xx, 3xx                  -> UNKNOWN    (may or may not have been applied)
    timeout, connection error, bad body -> UNKNOWN    (error "timeout" / "transport: <name>")
Every request carries its service's headers (its credential, sent to that service alone), the
saga id in the `transaction-id` header and an explicit timeout (an overall deadline for the
exchange, waiting for a connection included), and the current trace context as W3C `traceparent`
(nothing when tracing is off); inside a batch, each item carries its own call's id and
`traceparent`. Batching: `adapters/participant_batching.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import orjson
from opentelemetry.propagate import inject

from repository_after.adapters.participant_batching import BatchingParticipant, Queued
from repository_after.adapters.participant_transport import build_transport, failure_name
from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult

#: A participant's answer is a few hundred bytes per operation; a larger one is not read.
MAX_BODY_BYTES = 16 * 1024 * 1024
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


class AnswerTooLarge(Exception):
    """The answer's body passed `MAX_BODY_BYTES`; it is left unread, and its connection closed."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One service: its URL, whether it takes `POST /batch`, and the headers sent to it alone
    (its credential, `Authorization: Bearer <its token>`; never shown in a repr)."""

    url: str
    batching: bool = True
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


class HttpParticipant(BatchingParticipant):
    """`Participant` over HTTP; the batching rules are `BatchingParticipant`'s. `services`: name
    -> URL, or an `Endpoint` (its own batching and headers). `transport` replaces the production
    one (`build_transport(max_connections=...)`): tests pass respx's or one that trusts their own
    certificate authority. `headers` go with every exchange to every service; an `Endpoint`'s
    go to that service alone (bootstrap gives each service its own token that way, and nothing
    to all: a service's credential never reaches another service)."""

    def __init__(
        self,
        services: Mapping[str, str | Endpoint],
        *,
        max_connections: int = 64,
        batching: bool = True,
        max_in_flight: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        endpoints = {name: Endpoint(s) if isinstance(s, str) else s for name, s in services.items()}
        unbatched = [name for name, e in endpoints.items() if not e.batching]
        super().__init__(
            endpoints, batching=batching, max_in_flight=max_in_flight, unbatched=unbatched
        )
        for name, e in endpoints.items():  # a wrong URL is a mistake of set-up, not an outcome
            parsed = httpx.URL(e.url)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"service {name!r}: not an http(s) URL")
        self._services = {name: e.url.rstrip("/") for name, e in endpoints.items()}
        # Sent on every exchange to that service, single or batch (its credential).
        self._headers = {name: {**(headers or {}), **e.headers} for name, e in endpoints.items()}
        self._max_connections = max_connections
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
        # Made on first use, inside the event loop that will use it (aiohttp's session is
        # bound to the loop that made it). No default headers: each request carries its own
        # service's.
        transport = self._transport or build_transport(max_connections=self._max_connections)
        self._client = httpx.AsyncClient(
            transport=transport, follow_redirects=False, trust_env=False
        )
        return self._client

    async def _post(
        self, url: str, payload: object, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes] | CallResult:
        client = self._client or self._open()
        headers["content-type"] = "application/json"
        body = orjson.dumps(payload)
        try:
            # httpx's timeouts bound each phase; asyncio's bounds the whole exchange. Either
            # one cancels the exchange, which closes its connection.
            async with asyncio.timeout(timeout):
                return await _exchange(client, url, body, headers, timeout)
        except AnswerTooLarge:
            return CallResult(Outcome.UNKNOWN, None, "transport: ReadError")
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            # Any failure to get an answer is an unknown outcome, never an exception.
            return CallResult(Outcome.UNKNOWN, None, failure_name(exc))

    async def _single(
        self,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        headers = {**self._headers[service], "transaction-id": transaction_id}
        inject(headers)
        answer = await self._post(f"{self._services[service]}/{operation}", body, headers, timeout)
        return answer if isinstance(answer, CallResult) else classify(*answer)

    async def _post_batch(self, service: str, items: list[Queued]) -> list[CallResult]:
        operations = []
        for i in items:
            operation = {"operation": i.operation, "transaction_id": i.transaction_id, **i.body}
            if i.traceparent is not None:
                operation["traceparent"] = i.traceparent
            operations.append(operation)
        payload = {"operations": operations}
        timeout = min(i.timeout for i in items)
        url = f"{self._services[service]}/batch"
        answer = await self._post(url, payload, dict(self._headers[service]), timeout)
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
            if code == 200:
                error = "unreadable_body"
            else:  # another 2xx reads as success alone; as a batch's answer it says nothing
                error = classify(code, raw).error or f"http_{code}"
            return [CallResult(Outcome.UNKNOWN, code, f"batch: {error}")] * len(items)

    async def close(self) -> None:
        await super().close()
        if self._client is not None:
            await self._client.aclose()


async def _exchange(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    async with client.stream(
        "POST", url, content=body, headers=headers, timeout=timeout
    ) as response:
        raw = bytearray()
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise AnswerTooLarge  # leaving the stream unread closes the connection
        return response.status_code, bytes(raw)
