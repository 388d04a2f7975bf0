"""A lean HTTP/1.1 client for the participant's calls: keep-alive connections, one exchange at a
time on each, responses parsed by httptools (the C parser uvicorn already brings).

Why not aiohttp's client, which the participant used before: measured (docs/performance.md,
sixth round), aiohttp's request machinery (URL and header handling, payload registry, timers,
connector bookkeeping, response objects) cost about twice the CPU of this client per exchange,
syscalls included, and the orchestrator's CPU per transfer fell by about 15 % with this client.
The participant only ever POSTs a small JSON body to a service it knows and reads a small JSON
answer, so little of that machinery is needed.

The one rule that keeps money safe here: an answer is never taken for another request's. So a
connection carries one exchange at a time, and it goes back to the pool only after its answer
was read whole and the server kept it alive. Anything else (a timeout, a cancelled caller, a
parse error, the peer closing) closes the connection, so a late answer dies with it. Interim
answers (1xx) are read past, as HTTP/1.1 asks, so the final answer is the one returned.

Errors (every one means "the outcome is unknown" to the participant):
    TimeoutError          the whole exchange (waiting for a connection included) took too long
    TransportError(kind)  kind is one of:
        ConnectError        the connection could not be made (refused, unreachable, DNS, or
                            an https server whose certificate does not verify)
        ServerDisconnected  the peer closed before any byte of the answer
        ReadError           the answer broke off, could not be parsed, or was too large
                            (also an answer whose end only the connection closing marks:
                            sagabank's services always send a length or chunks)
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

#: Idle connections older than this are not reused: uvicorn closes them after 5 s, and reusing
#: one it is closing costs an unknown outcome and a retry.
KEEPALIVE_SECONDS = 3.0
#: A participant's answer is a few hundred bytes per operation.
MAX_BODY_BYTES = 16 * 1024 * 1024


class TransportError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: bytes  # host[:port], IPv6 brackets included


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.answered = False  # a byte of the current answer has arrived
        self.reusable = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: this connection can no longer be trusted
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("ReadError")

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 (why is not needed)
        self.closed = True
        self._fail("ReadError" if self.answered else "ServerDisconnected")

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # a second answer to one request: nothing on this connection is trusted

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY_BYTES:
            raise httptools.HttpParserError("answer too large")
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.chunks, self.size = [], 0
            return
        self.reusable = status >= 200 and self.parser.should_keep_alive()
        waiter.set_result((status, b"".join(self.chunks)))

    # the client's side
    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.chunks, self.size, self.answered, self.reusable = [], 0, False, False
        self.transport.write(request)
        return await self.waiter

    def _fail(self, kind: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TransportError(kind))
        self.close()

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class HttpTransport:
    """POST over pooled keep-alive connections: at most `limit` open at once (waiting for one
    counts against the call's timeout), idle ones reused for `keepalive` seconds. `https://`
    URLs verify the server against `ssl_context`, by default the system's trust store."""

    def __init__(
        self,
        *,
        limit: int = 64,
        keepalive: float = KEEPALIVE_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._keepalive = keepalive
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, deque[_Connection]] = {}
        self._urls: dict[str, tuple[_Origin, bytes]] = {}
        self._closed = False

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        """(status code, body) of the answer; raises TimeoutError or TransportError."""
        origin, target = self._parse(url)
        request = _request(origin, target, body, headers)
        async with asyncio.timeout(timeout), self._slots:
            conn = self._take_idle(origin) or await self._connect(origin)
            try:
                answer = await conn.exchange(request)
            except BaseException:
                conn.close()  # timed out, cancelled or broken: its late answer dies with it
                raise
            if conn.reusable and not self._closed:
                conn.idle_since = time.monotonic()
                self._idle.setdefault(origin, deque()).append(conn)
            else:
                conn.close()
            return answer

    def _parse(self, url: str) -> tuple[_Origin, bytes]:
        known = self._urls.get(url)
        if known is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            host_header = parts.netloc.rpartition("@")[2].encode("ascii")  # ASCII names only
            origin = _Origin(parts.scheme, parts.hostname, port, host_header)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            known = self._urls[url] = (origin, target.encode("ascii"))
        return known

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        oldest_usable = time.monotonic() - self._keepalive
        while idle:
            conn = idle.pop()  # the most recently used first
            if not conn.closed and conn.idle_since >= oldest_usable:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        if tls and self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        context = self._ssl_context if tls else None
        try:
            _, conn = await loop.create_connection(
                _Connection,
                origin.host,
                origin.port,
                ssl=context,
                server_hostname=origin.host if tls else None,
            )
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            raise TransportError("ConnectError") from exc
        return conn

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()


def _request(origin: _Origin, target: bytes, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n"
        % (target, origin.host_header, len(body))
    ]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} would break the request")
        lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)
