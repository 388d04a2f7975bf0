"""FastAPI dependencies shared by the routers: the container, the admin guard, the id header."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from repository_after.domain.money import is_valid_transaction_id
from repository_after.entrypoints.errors import BadRequest


def container(request: Request) -> Any:
    return request.app.state.container


def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = request.app.state.container.settings.admin_token
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}"
    if authorization is None or not secrets.compare_digest(authorization, expected):
        raise BadRequest("unauthorized", "this endpoint requires the admin bearer token", 401)


def transaction_id_header(
    transaction_id: Annotated[str | None, Header(alias="transaction-id")] = None,
) -> str:
    if transaction_id is None:
        raise BadRequest("invalid_transaction_id", "header 'transaction-id' is required")
    if not is_valid_transaction_id(transaction_id):
        raise BadRequest(
            "invalid_transaction_id",
            "header 'transaction-id' must be 1-128 characters of letters, digits, '.', '_', "
            "':' or '-'",
        )
    return transaction_id


def optional_transaction_id_header(
    transaction_id: Annotated[str | None, Header(alias="transaction-id")] = None,
) -> str | None:
    return None if transaction_id is None else transaction_id_header(transaction_id)


TransactionId = Annotated[str, Depends(transaction_id_header)]
OptionalTransactionId = Annotated[str | None, Depends(optional_transaction_id_header)]
Admin = Depends(require_admin)
