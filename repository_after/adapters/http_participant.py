"""HTTP adapter of the `Participant` port: one keep-alive `httpx.AsyncClient` per process.

Classification of one attempt (the outcome rules of the README):
    2xx with a JSON object body         -> SUCCEEDED
    4xx except 408 / 429                -> REJECTED   (a definite business answer)
    408, 429, 5xx                       -> UNKNOWN    (may or may not have been applied)
    timeout, connection error, bad body -> UNKNOWN
Every request carries the saga id in the `transaction-id` header and an explicit timeout, and
the current trace context as W3C `traceparent` (nothing when tracing is off).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from opentelemetry.propagate import inject

from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult

logger = logging.getLogger(__name__)

_RETRYABLE_4XX = frozenset({408, 429})


def classify(response: httpx.Response) -> CallResult:
    code = response.status_code
    try:
        body = response.json()
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


class HttpParticipant:
    def __init__(
        self, services: Mapping[str, str], *, client: httpx.AsyncClient | None = None
    ) -> None:
        self._services = {name: url.rstrip("/") for name, url in services.items()}
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

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
        headers = {"transaction-id": transaction_id}
        inject(headers)
        try:
            response = await self._client.post(url, json=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return CallResult(Outcome.UNKNOWN, None, "timeout")
        except httpx.TransportError as exc:
            return CallResult(Outcome.UNKNOWN, None, f"transport: {type(exc).__name__}")
        return classify(response)

    async def close(self) -> None:
        await self._client.aclose()
