"""The transport under the participant's `httpx.AsyncClient`: httpx-aiohttp's `AiohttpTransport`
on an aiohttp connector that never reuses a connection holding bytes nobody asked for.

Why a connector of our own: aiohttp's keeps parsing a pooled connection while it sits idle, and
an answer that arrives then (a second answer to the last request, a proxy's `408` before it
closes) waits in the connection's buffer; aiohttp 3.14 reuses such a connection, and the next
request reads that answer as its own. A stray 2xx would pass for an applied debit or credit (money
created), a stray 4xx for a refusal of one that was applied (money lost). `_FreshConnector`
closes every idle connection whose protocol `should_close` (aiohttp's own test for "not
reusable", which counts buffered data) before the pool hands one out. It overrides the
connector's `_get`, an internal of aiohttp: the behaviour is pinned by
`tests/unit/test_http_transport.py::test_an_answer_that_arrives_on_an_idle_connection_is_never_taken_for_the_next`,
so an aiohttp upgrade that changes it fails there, not in production.

`failure_name` names an exchange that got no answer the way the saga history always has:
`timeout`, `transport: ConnectError`, `transport: ServerDisconnected`, `transport: ReadError`.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

#: Idle connections older than this are not reused: uvicorn closes them after 5 s, and reusing
#: one it is closing costs an unknown outcome and a retry.
KEEPALIVE_SECONDS = 3.0


class _FreshConnector(aiohttp.TCPConnector):
    async def _get(self, key: Any, traces: Any) -> Any:
        idle = self._conns.get(key)
        if idle:
            for entry in [e for e in idle if e[0].should_close]:
                idle.remove(entry)  # unasked bytes arrived while it was idle: never reuse it
                entry[0].close()
            if not idle:
                del self._conns[key]
        return await super()._get(key, traces)


def build_transport(
    *,
    max_connections: int = 64,
    keepalive: float = KEEPALIVE_SECONDS,
    verify: ssl.SSLContext | None = None,
) -> httpx.AsyncBaseTransport:
    """The production transport: at most `max_connections` open (waiting for one counts
    against the call's timeout), idle ones reused for `keepalive` seconds if nothing arrived on
    them; `verify` defaults to the system's trust store."""
    context = verify if verify is not None else ssl.create_default_context()

    def session() -> aiohttp.ClientSession:
        # Made by the transport on first use, inside the event loop that uses it.
        connector = _FreshConnector(limit=max_connections, keepalive_timeout=keepalive, ssl=context)
        return aiohttp.ClientSession(connector=connector, trust_env=False)

    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive,
    )
    return AiohttpTransport(verify=context, trust_env=False, limits=limits, client=session)


#: aiohttp's errors for a broken answer, named as the saga history has always named them.
_READ_ERRORS = (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)


def failure_name(exc: BaseException) -> str:
    """The error an operator sees for an exchange that got no answer."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    # httpx-aiohttp 0.2 reports every aiohttp connection error as a ConnectTimeout (a refused
    # connection, a peer that hung up): name what really happened, from aiohttp's error.
    cause = exc if isinstance(exc, aiohttp.ClientError) else exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, TimeoutError):  # aiohttp's own timeouts
            return "timeout"
        if isinstance(cause, aiohttp.ClientConnectorError):
            return "transport: ConnectError"
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return "transport: ServerDisconnected"
        if isinstance(cause, _READ_ERRORS):
            return "transport: ReadError"
        return f"transport: {type(cause).__name__}"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return f"transport: {type(exc).__name__}"
