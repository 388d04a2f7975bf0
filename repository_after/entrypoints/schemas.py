"""Wire schemas of the HTTP API. Strict: no coercion of "10" or 1.0 or true into an amount."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from repository_after.domain.ids import ACCOUNT_ID_PATTERN
from repository_after.domain.money import MAX_AMOUNT, MAX_BALANCE, MIN_AMOUNT

AccountId = Annotated[
    StrictStr, Field(pattern=ACCOUNT_ID_PATTERN.pattern, description="1-64 of [A-Za-z0-9._:-]")
]
Amount = Annotated[
    StrictInt, Field(ge=MIN_AMOUNT, le=MAX_AMOUNT, description="integer minor units (cents)")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OperationIn(_Strict):
    account_id: AccountId
    amount: Amount


class SettlementIn(_Strict):
    """Body of a settlement: optional, but what it gives must match the original operation."""

    account_id: AccountId | None = None
    amount: Amount | None = None


class OperationOut(BaseModel):
    transaction_id: str
    operation: str
    account_id: str | None
    amount: int | None
    balance_after: int | None
    status: str


class OpenAccountIn(_Strict):
    account_id: AccountId
    initial_balance: Annotated[StrictInt, Field(ge=0, le=MAX_BALANCE)]


class AccountOut(BaseModel):
    account_id: str
    balance: int
    opening_balance: int


class AccountsOut(BaseModel):
    accounts: list[AccountOut]
    total: int


class EntryOut(BaseModel):
    entry_id: int
    transaction_id: str
    operation: str
    delta: int
    balance_after: int
    created_at: str


class ErrorOut(BaseModel):
    error: str
    message: str
    details: list[dict[str, object]] | None = None


class TransferIn(_Strict):
    source: AccountId
    target: AccountId
    amount: Amount


#: Error answers any route may give, for the OpenAPI document (the shape is `ErrorOut`).
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 413, 422, 431, 500, 503)
}
