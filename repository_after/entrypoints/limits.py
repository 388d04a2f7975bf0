"""Request size limits, as a pure ASGI middleware in front of every route.

Headers larger than `max_header_bytes` in total are refused with 431, bodies larger than
`max_body_bytes` with 413 — whether the size is announced by `content-length` or only discovered
while streaming a chunked body. Either way the refusal comes before the route parses its body, so
nothing changes.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repository_after.domain.errors import error_body

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024


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


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes

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
        length = dict(headers).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _refuse(
                send, 413, "body_too_large", f"request body exceeds {self.max_body} bytes"
            )
            return
        received = 0

        async def limited_receive() -> Message:
            # Raised inside the route's body read, so the app's own error table answers 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"request body exceeds {self.max_body} bytes")
            return message

        await self.app(scope, limited_receive, send)
