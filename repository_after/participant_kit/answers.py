"""The answers of a participant's HTTP edge that are not an operation's own: the bearer check,
the body's JSON, and the product's `{"error": code, "message": …}` refusals (entrypoints/errors.py).

One module for both the kit's router (`http`) and every host of it (the account service's guard
uses `bearer_matches` too): a refusal reads the same whichever participant gives it.
- 401 `unauthorized`: no `Authorization: Bearer <token>` when a token is configured (compared
  in constant time);
- 422 `invalid_transaction_id`: the `transaction-id` header missing or not
  `domain.ids.TRANSACTION_ID_PATTERN`;
- 422 `invalid_request`: the body is not JSON (`json_invalid`, at the byte where decoding
  stopped, as FastAPI names it) or not what the operation takes: fields named, inputs never
  echoed (`validation_details`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request, Response
from pydantic import SecretStr, ValidationError

from repository_after.participant_kit.records import Answer, error_body

REPLAYED = "Idempotent-Replayed"
JSON = "application/json"
BAD_KEY_MESSAGE = (
    "header 'transaction-id' is required: 1-128 characters of letters, digits, '.', '_', ':' or '-'"
)


def json_response(status_code: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=JSON)


def respond(answer: Answer) -> Response:
    """An operation's answer: its exact bytes, `Idempotent-Replayed: true` on a replay."""
    headers = {REPLAYED: "true"} if answer.replayed else None
    return Response(answer.body, status_code=answer.status_code, headers=headers, media_type=JSON)


def validation_details(
    exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)
) -> list[dict[str, object]]:
    """What was wrong and where, never the input itself."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_input=False, include_url=False)
    ]


def invalid_request(details: list[dict[str, object]]) -> Response:
    return json_response(
        422, {**error_body("invalid_request", "the request is invalid"), "details": details}
    )


def bad_key() -> Response:
    return json_response(422, error_body("invalid_transaction_id", BAD_KEY_MESSAGE))


def bearer_matches(token: SecretStr, authorization: str | None) -> bool:
    """Whether `authorization` is exactly `Bearer <token>`, in constant time (the time says
    nothing of how much matched): every bearer check of sagabank (`entrypoints.deps` too)."""
    expected = f"Bearer {token.get_secret_value()}".encode()
    given = (authorization or "").encode("utf-8", "surrogateescape")
    return secrets.compare_digest(given, expected)


def bearer_guard(token: SecretStr | None) -> Callable[[Request], Response | None]:
    """None when the request may pass; else the 401 answer. No token configured: all pass."""

    def check(request: Request) -> Response | None:
        if token is None or bearer_matches(token, request.headers.get("authorization")):
            return None
        return json_response(
            401, error_body("unauthorized", "this endpoint requires the service token")
        )

    return check


async def read_json(request: Request) -> object | Response:
    """The body's JSON (None for an empty body), or the 422 naming where decoding stopped.
    orjson is strict JSON: NaN, Infinity and nesting deeper than 1024 are not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        value: object = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        where: dict[str, object] = {
            "loc": ["body", exc.pos],
            "msg": "JSON decode error",
            "type": "json_invalid",
        }
        return invalid_request([where])
    return value
