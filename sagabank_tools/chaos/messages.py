"""What the fault proxy handles: one request as it arrived, one reply as it will be sent.

Transport-free values, so the fault logic (`proxy.py`) neither parses nor writes HTTP: Starlette
reads requests and uvicorn writes replies, httpx talks to the account service. A reply body is
always JSON (the account service's own, or an `{"error", "message"}` the proxy makes up).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # the target as the client sent it: path and query string
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    replayed: bool = False  # the account service answered `idempotent-replayed: true`

    @property
    def error(self) -> str | None:
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(self.body).get("error")) if self.status >= 400 else None
        return None


def error_reply(status: int, code: str, message: str) -> Reply:
    return Reply(status, json.dumps({"error": code, "message": message}).encode())
