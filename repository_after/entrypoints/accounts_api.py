"""HTTP edge of the account service's own routes: opening and reading accounts, the audit.

Its operations (`/debit`, `/credit`, `/compensate_debit`, `/void_credit`) and `/batch` are served
by the participant kit's router, as every participant's are (`entrypoints.account_edge`). The
admin guard (`Admin`) protects opening accounts; the read guard (`Reader`) the reads.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query

from repository_after.domain.errors import AccountNotFound
from repository_after.domain.ids import ACCOUNT_ID_PATTERN
from repository_after.entrypoints.deps import (
    AccountStoreDep,
    Admin,
    OptionalOrchestratorDep,
    Reader,
)
from repository_after.entrypoints.schemas import (
    ERROR_RESPONSES,
    AccountOut,
    AccountsOut,
    EntryOut,
    OpenAccountIn,
)
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import AuditReport, audit
from repository_after.service_layer.ports import AccountsReader
from repository_after.service_layer.reconcile import reconcile

logger = logging.getLogger(__name__)

router = APIRouter(tags=["accounts"])

#: A path id is checked before any query: a NUL byte or an over-long id is a 422, never a storage
#: error (PostgreSQL's driver rejects NUL in text).
AccountIdPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN.pattern, max_length=64)]


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=ERROR_RESPONSES,
    dependencies=[Admin],
)
async def open_account(store: AccountStoreDep, body: OpenAccountIn) -> AccountOut:
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


@router.get("/accounts", response_model=AccountsOut, dependencies=[Reader])
async def list_accounts(store: AccountStoreDep) -> AccountsOut:
    rows = await store.read(lambda r: r.list_accounts())
    items = [
        AccountOut(account_id=a.account_id, balance=a.balance, opening_balance=a.opening_balance)
        for a in rows
    ]
    return AccountsOut(accounts=items, total=sum(a.balance for a in rows))


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    responses=ERROR_RESPONSES,
    dependencies=[Reader],
)
async def get_account(store: AccountStoreDep, account_id: AccountIdPath) -> AccountOut:
    account = await store.read(lambda r: r.get_account(account_id))
    if account is None:
        raise AccountNotFound(f"account {account_id!r} does not exist")
    return AccountOut(
        account_id=account.account_id,
        balance=account.balance,
        opening_balance=account.opening_balance,
    )


@router.get(
    "/accounts/{account_id}/entries",
    response_model=list[EntryOut],
    responses=ERROR_RESPONSES,
    dependencies=[Reader],
)
async def list_entries(
    store: AccountStoreDep,
    account_id: AccountIdPath,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> list[EntryOut]:
    """The account's entries, newest first; `before` (an entry id): only older ones, so a
    reader pages through every entry by passing the oldest id it got."""

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
            for e in reader.list_entries(account_id, limit=limit, before=before)
        ]

    entries: list[EntryOut] | None = await store.read(read)
    if entries is None:
        raise AccountNotFound(f"account {account_id!r} does not exist")
    return entries


@router.get("/audit", dependencies=[Reader])
async def get_audit(
    store: AccountStoreDep, orchestrator: OptionalOrchestratorDep
) -> dict[str, object]:
    """The book audit; reconciled with the saga log when this process holds it (role all)."""
    if orchestrator is None:
        report: AuditReport = await store.read(audit)
    else:
        report = await reconcile(store, orchestrator.log)
    return report.as_dict()
