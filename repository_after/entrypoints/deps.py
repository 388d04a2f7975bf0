"""FastAPI dependencies shared by the routers: the admin guard and the transaction-id header."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request

from repository_after.domain.money import TRANSACTION_ID_PATTERN
from repository_after.entrypoints.errors import BadRequest


def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = request.app.state.container.settings.admin_token
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}".encode()
    given = (authorization or "").encode("utf-8", "surrogateescape")
    if not secrets.compare_digest(given, expected):
        raise BadRequest("unauthorized", "this endpoint requires the admin bearer token", 401)


_TX_HEADER = Header(
    alias="transaction-id",
    pattern=TRANSACTION_ID_PATTERN.pattern,
    description="idempotency key: 1-128 of letters, digits, '.', '_', ':', '-'",
)
TransactionId = Annotated[str, _TX_HEADER]
OptionalTransactionId = Annotated[str | None, _TX_HEADER]
Admin = Depends(require_admin)
