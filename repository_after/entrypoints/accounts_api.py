"""HTTP edge of the account service: parse, call one use case in one transaction, answer.

`/credit` is where fault injection lives: `before` answers 500 without touching the store,
`after` runs the use case (it commits) and then answers 500 anyway — the lost response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.domain.errors import AccountNotFound, BusinessError, error_body
from repository_after.entrypoints.deps import Admin, TransactionId
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.entrypoints.schemas import (
    ERROR_RESPONSES,
    AccountOut,
    AccountsOut,
    EntryOut,
    OpenAccountIn,
    OperationIn,
    OperationOut,
    SettlementIn,
)
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import AuditReport, audit
from repository_after.service_layer.faults import FaultPoint
from repository_after.service_layer.ports import AccountsReader

logger = logging.getLogger(__name__)

router = APIRouter(tags=["accounts"])


@dataclass(frozen=True, slots=True)
class Answer:
    """What the service answers to one operation, alone or inside a batch."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    def response(self) -> JSONResponse:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return JsonResponse(self.body, status_code=self.status_code, headers=headers)


async def perform(request: Request, op_request: OperationRequest) -> Answer:
    """One operation in one local transaction, with `/credit`'s fault injection. A business
    error raised by the use case (it rolled back) is answered like the app's error table does."""
    faults = request.app.state.container.faults
    point = (
        faults.draw(op_request.transaction_id) if op_request.operation is Operation.CREDIT else None
    )
    if point is FaultPoint.BEFORE:
        return Answer(500, error_body("injected_fault", "injected fault before the credit"))
    store = request.app.state.container.account_store
    try:
        reply = await store.transaction(
            lambda tx: accounts.HANDLERS[op_request.operation](tx, op_request)
        )
    except BusinessError as exc:
        return Answer(exc.http_status, error_body(exc.code, exc.message))
    logger.info(
        "%s %s -> %s%s",
        op_request.operation.value,
        op_request.transaction_id,
        reply.status_code,
        " (replayed)" if reply.replayed else "",
    )
    if point is FaultPoint.AFTER:
        return Answer(
            500,
            error_body(
                "injected_fault",
                "injected fault: the answer was lost after the request was processed",
            ),
        )
    return Answer(reply.status_code, reply.body, reply.replayed)


async def _run(request: Request, op_request: OperationRequest) -> JSONResponse:
    return (await perform(request, op_request)).response()


@router.post("/debit", response_model=OperationOut, responses=ERROR_RESPONSES)
async def debit(request: Request, tx_id: TransactionId, body: OperationIn) -> JSONResponse:
    return await _run(
        request, OperationRequest(Operation.DEBIT, tx_id, body.account_id, body.amount)
    )


@router.post("/credit", response_model=OperationOut, responses=ERROR_RESPONSES)
async def credit(request: Request, tx_id: TransactionId, body: OperationIn) -> JSONResponse:
    return await _run(
        request, OperationRequest(Operation.CREDIT, tx_id, body.account_id, body.amount)
    )


_OptionalSettlement = Annotated[SettlementIn | None, Body()]


@router.post("/compensate_debit", response_model=OperationOut, responses=ERROR_RESPONSES)
async def compensate_debit(
    request: Request, tx_id: TransactionId, body: _OptionalSettlement = None
) -> JSONResponse:
    body = body or SettlementIn()
    return await _run(
        request,
        OperationRequest(Operation.COMPENSATE_DEBIT, tx_id, body.account_id, body.amount),
    )


@router.post("/void_credit", response_model=OperationOut, responses=ERROR_RESPONSES)
async def void_credit(
    request: Request, tx_id: TransactionId, body: _OptionalSettlement = None
) -> JSONResponse:
    body = body or SettlementIn()
    return await _run(
        request, OperationRequest(Operation.VOID_CREDIT, tx_id, body.account_id, body.amount)
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=ERROR_RESPONSES,
    dependencies=[Admin],
)
async def open_account(request: Request, body: OpenAccountIn) -> AccountOut:
    store = request.app.state.container.account_store
    await store.transaction(
        lambda tx: accounts.open_account(
            tx, account_id=body.account_id, initial_balance=body.initial_balance
        )
    )
    logger.info("opened account %s with %s", body.account_id, body.initial_balance)
    return AccountOut(
        account_id=body.account_id,
        balance=body.initial_balance,
        opening_balance=body.initial_balance,
    )


@router.get("/accounts", response_model=AccountsOut)
async def list_accounts(request: Request) -> AccountsOut:
    rows = await request.app.state.container.account_store.read(lambda r: r.list_accounts())
    items = [
        AccountOut(account_id=a.account_id, balance=a.balance, opening_balance=a.opening_balance)
        for a in rows
    ]
    return AccountsOut(accounts=items, total=sum(a.balance for a in rows))


@router.get("/accounts/{account_id}", response_model=AccountOut, responses=ERROR_RESPONSES)
async def get_account(request: Request, account_id: str) -> AccountOut:
    store = request.app.state.container.account_store
    account = await store.read(lambda r: r.get_account(account_id))
    if account is None:
        raise AccountNotFound(f"account {account_id!r} does not exist")
    return AccountOut(
        account_id=account.account_id,
        balance=account.balance,
        opening_balance=account.opening_balance,
    )


@router.get(
    "/accounts/{account_id}/entries", response_model=list[EntryOut], responses=ERROR_RESPONSES
)
async def list_entries(
    request: Request, account_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[EntryOut]:
    store = request.app.state.container.account_store

    def read(reader: AccountsReader) -> list[EntryOut] | None:
        if reader.get_account(account_id) is None:
            return None
        return [
            EntryOut(
                entry_id=e.entry_id,
                transaction_id=e.transaction_id,
                operation=e.operation.value,
                delta=e.delta,
                balance_after=e.balance_after,
                created_at=e.created_at,
            )
            for e in reader.list_entries(account_id, limit=limit)
        ]

    entries: list[EntryOut] | None = await store.read(read)
    if entries is None:
        raise AccountNotFound(f"account {account_id!r} does not exist")
    return entries


@router.get("/audit")
async def get_audit(request: Request) -> dict[str, object]:
    report: AuditReport = await request.app.state.container.account_store.read(audit)
    return report.as_dict()
