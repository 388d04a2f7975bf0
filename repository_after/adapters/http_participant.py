"""HTTP adapter of the `Participant` port: one keep-alive aiohttp session per process.

aiohttp rather than httpx here, measured (docs/performance.md): in a whole transfer, httpcore's
pool cost more orchestrator CPU than everything else together (it polls every pooled socket on
each request), and even over aiohttp's pool the httpx layer (URL and cookie handling, request
building) cost more than the transport underneath. The unit tests mock the session with
aioresponses; tests/unit/test_participant_transport.py runs it against real loopback sockets.

Classification of one attempt (the outcome rules of the README):
    2xx with a JSON object body         -> SUCCEEDED
    4xx except 408 / 429                -> REJECTED   (a definite business answer)
    408, 429, 5xx                       -> UNKNOWN    (may or may not have been applied)
    timeout, connection error, bad body -> UNKNOWN
Every request carries the saga id in the `transaction-id` header and an explicit timeout, and
the current trace context as W3C `traceparent` (nothing when tracing is off).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from opentelemetry.propagate import inject

from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult

_RETRYABLE_4XX = frozenset({408, 429})


def classify(code: int, raw: bytes) -> CallResult:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
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


#: Stable names for the operator (history, dashboard), whatever the client library calls them.
_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorError, "ConnectError"),  # refused, unreachable, DNS
    (aiohttp.ServerDisconnectedError, "ServerDisconnected"),  # closed before answering
    (aiohttp.ClientPayloadError, "ReadError"),  # the answer broke off
)


def _kind(exc: BaseException) -> str:
    return next((name for cls, name in _KINDS if isinstance(exc, cls)), type(exc).__name__)


class HttpParticipant:
    def __init__(self, services: Mapping[str, str], *, max_connections: int = 64) -> None:
        self._services = {name: url.rstrip("/") for name, url in services.items()}
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the event loop that will use it. Idle connections are
        # dropped before uvicorn's 5 s keep-alive ends them, so a reused connection is rarely
        # one the server is closing (that race costs an unknown outcome and a retry).
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=3.0)
        self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        url = f"{self._services[service]}/{operation}"
        headers = {"transaction-id": transaction_id, "content-type": "application/json"}
        inject(headers)
        session = self._session or self._open()
        try:
            async with session.post(
                url,
                data=json.dumps(body, separators=(",", ":")),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,  # a 3xx is not an answer: unknown, like httpx's default
            ) as response:
                raw = await response.read()
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors
            return CallResult(Outcome.UNKNOWN, None, "timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return CallResult(Outcome.UNKNOWN, None, f"transport: {_kind(exc)}")
        return classify(response.status, raw)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
