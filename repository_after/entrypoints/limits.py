"""What every request must satisfy before any route sees it, as ONE pure ASGI middleware.

In order, each refusal a JSON answer in the house format (`{"error", "message"}`):
1. headers larger than `max_header_bytes` in total: 431 `headers_too_large`;
2. two `transaction-id` headers: 422 `invalid_transaction_id`; two `content-type` headers: 422
   `invalid_request` (which one would a route read? a proxy and the app could disagree);
3. a `Host` header not in `trusted_hosts` (DNS rebinding: a page on evil.example, resolved to
   127.0.0.1, would otherwise talk to the loopback service): 400 `untrusted_host`; `*` trusts any;
4. a state-changing method (not GET/HEAD/OPTIONS) sent by a browser from another site
   (`Sec-Fetch-Site: cross-site`, or an `Origin` whose host is neither the request's own `Host`
   nor trusted): 403 `cross_site_request`. Clients that send neither header (curl, the
   orchestrator's httpx client, server to server) pass: CSRF needs a browser;
5. bodies larger than `max_body_bytes` (or, under a path prefix of `larger_bodies`, that
   prefix's limit: the participants a `sagabank serve` process hosts take whole orders): 413
   `body_too_large`, whether announced by `content-length` or only discovered while streaming a
   chunked body.
Every refusal comes before the route parses its body or solves a dependency, so a refused
request records nothing (no idempotency record, no entry, no fault draw).

Why not Starlette's `TrustedHostMiddleware`: it answers a plain-text 400 we cannot make JSON
without copying it, and it splits `Host` on ':' so `[::1]:8000` never matches `::1`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repository_after.domain.errors import error_body

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TX_MESSAGE = (
    "header 'transaction-id' is required: 1-128 characters of letters, digits, '.', '_', ':' or '-'"
)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def host_name(authority: str) -> str:
    """The host of a `Host` header or URL authority, lower-case, without port or IPv6 brackets:
    `[::1]:8000` -> `::1`, `Example.com:80` -> `example.com`."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    if authority.count(":") > 1:  # a bare IPv6 address, no port
        return authority
    return authority.partition(":")[0]


def _problem(
    headers: list[tuple[bytes, bytes]], method: str, trusted: frozenset[str]
) -> tuple[int, str, str] | None:
    """The refusal (status, code, message) the headers call for, or None."""
    tx_ids = content_types = 0
    host = origin = fetch_site = None
    for key, value in headers:
        if key == b"transaction-id":
            tx_ids += 1
        elif key == b"content-type":
            content_types += 1
        elif key == b"host":
            host = value.decode("latin-1")
        elif key == b"origin":
            origin = value.decode("latin-1")
        elif key == b"sec-fetch-site":
            fetch_site = value.decode("latin-1").strip().lower()
    if tx_ids > 1:
        return 422, "invalid_transaction_id", _TX_MESSAGE + "; send it once"
    if content_types > 1:
        return 422, "invalid_request", "header 'content-type' must be sent once"
    own = host_name(host or "")
    if "*" not in trusted and own not in trusted:
        return 400, "untrusted_host", "the Host header names a host this service does not serve"
    if method not in _SAFE_METHODS:
        cross = fetch_site == "cross-site"
        if origin is not None and not cross:
            # `Origin: null` (sandboxed frames, some redirects) is cross-site too.
            origin_host = host_name(urlsplit(origin.strip()).netloc)
            cross = origin_host != own and origin_host not in trusted
        if cross:
            return 403, "cross_site_request", "state-changing requests from other sites are refused"
    return None


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        trusted_hosts: Iterable[str] = ("*",),
        larger_bodies: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        #: path prefix ("/inventory") -> the body limit of the paths under it
        self.larger_bodies = tuple(
            (p.rstrip("/") + "/", n) for p, n in (larger_bodies or {}).items()
        )
        self.max_headers = max_header_bytes
        self.trusted = frozenset(host_name(h) if h != "*" else h for h in trusted_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if sum(len(k) + len(v) for k, v in headers) > self.max_headers:
            await _refuse(
                send, 431, "headers_too_large", f"request headers exceed {self.max_headers} bytes"
            )
            return
        if (problem := _problem(headers, scope["method"], self.trusted)) is not None:
            await _refuse(send, *problem)
            return
        max_body = self.max_body
        path: str = scope["path"]
        for prefix, limit in self.larger_bodies:
            if path.startswith(prefix):
                max_body = limit
        length = dict(headers).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            await _refuse(send, 413, "body_too_large", f"request body exceeds {max_body} bytes")
            return
        received = 0

        async def limited_receive() -> Message:
            # Raised inside the route's body read, so the app's own error table answers 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise HTTPException(413, f"request body exceeds {max_body} bytes")
            return message

        await self.app(scope, limited_receive, send)
