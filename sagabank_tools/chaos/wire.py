"""The HTTP/1.1 wire format the fault proxy speaks: just enough for the orchestrator's client.

Requests carry a `content-length` body (the orchestrator sends its JSON as bytes); replies are
always JSON with a `content-length`, and keep-alive is the default, as in HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    replayed: bool = False

    @property
    def error(self) -> str | None:
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(self.body).get("error")) if self.status >= 400 else None
        return None


def error_reply(status: int, code: str, message: str) -> Reply:
    return Reply(status, json.dumps({"error": code, "message": message}).encode())


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None  # the client closed a keep-alive connection between requests
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


def encode(reply: Reply) -> bytes:
    head = [
        f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}",
        "content-type: application/json",
        f"content-length: {len(reply.body)}",
    ]
    if reply.replayed:
        head.append("idempotent-replayed: true")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
