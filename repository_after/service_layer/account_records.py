"""The account service's durable answers: storing a reply, replaying it, rebuilding it.

One `OperationRecord` per (operation, transaction id) holds the exact answer given, written in the
same local transaction as any balance change it causes, so a duplicate replays it byte for byte.
Once retention purged a record, an applied operation's answer is rebuilt from its ledger entry
(kept forever); purged refusals are forgotten and decided afresh.
"""

from __future__ import annotations

from repository_after.domain import errors
from repository_after.domain.accounts import (
    Operation,
    OperationRecord,
    OperationRequest,
    OperationStatus,
    Reply,
)
from repository_after.service_layer.ports import AccountsTx


def _reply_body(
    request: OperationRequest,
    status: OperationStatus,
    *,
    account_id: str | None,
    amount: int | None,
    balance_after: int | None,
) -> dict[str, object]:
    return {
        "transaction_id": request.transaction_id,
        "operation": request.operation.value,
        "account_id": account_id,
        "amount": amount,
        "balance_after": balance_after,
        "status": status.value,
    }


def record(
    tx: AccountsTx,
    request: OperationRequest,
    status: OperationStatus,
    *,
    account_id: str | None,
    amount: int | None,
    balance_after: int | None = None,
    applied: bool = False,
) -> Reply:
    body = _reply_body(
        request, status, account_id=account_id, amount=amount, balance_after=balance_after
    )
    return _store(
        tx,
        request,
        status,
        body=body,
        status_code=200,
        applied=applied,
        account_id=account_id,
        amount=amount,
    )


def reject(tx: AccountsTx, request: OperationRequest, error: errors.BusinessError) -> Reply:
    body = errors.error_body(error.code, error.message)
    return _store(
        tx,
        request,
        OperationStatus.REJECTED,
        body=body,
        status_code=error.http_status,
        account_id=request.account_id,
        amount=request.amount,
    )


def _store(
    tx: AccountsTx,
    request: OperationRequest,
    status: OperationStatus,
    *,
    body: dict[str, object],
    status_code: int,
    account_id: str | None,
    amount: int | None,
    applied: bool = False,
) -> Reply:
    tx.insert_record(
        OperationRecord(
            operation=request.operation,
            transaction_id=request.transaction_id,
            account_id=account_id,
            amount=amount,
            status=status,
            applied=applied,
            status_code=status_code,
            body=body,
        )
    )
    return Reply(status_code, body)


def original(tx: AccountsTx, operation: Operation, transaction_id: str) -> OperationRecord | None:
    """The record of (operation, id); once retention purged it, rebuilt from its ledger entry.

    Applied operations leave a ledger entry that is never purged and holds everything their answer
    said, so a duplicate, a compensation or a void still sees them after `sagabank gc`. Purged
    refusals are forgotten: a request repeated after the retention horizon is decided afresh.
    """
    record = tx.get_record(operation, transaction_id)
    if record is not None:
        return record
    entry = tx.get_entry(operation, transaction_id)
    if entry is None:
        return None
    status = (
        OperationStatus.COMPENSATED
        if operation is Operation.COMPENSATE_DEBIT
        else OperationStatus.APPLIED
    )
    body = {
        "transaction_id": transaction_id,
        "operation": operation.value,
        "account_id": entry.account_id,
        "amount": abs(entry.delta),
        "balance_after": entry.balance_after,
        "status": status.value,
    }
    return OperationRecord(
        operation, transaction_id, entry.account_id, abs(entry.delta), status, True, 200, body
    )


def replay_if_recorded(tx: AccountsTx, request: OperationRequest) -> Reply | None:
    previous = original(tx, request.operation, request.transaction_id)
    if previous is None:
        return None
    if not request.agrees_with(account_id=previous.account_id, amount=previous.amount):
        raise errors.IdempotencyKeyReused(
            f"transaction id {request.transaction_id!r} was already used for a different "
            f"{request.operation.value} request"
        )
    return previous.replay()


def require_agreement(request: OperationRequest, original: OperationRecord) -> None:
    if not request.agrees_with(account_id=original.account_id, amount=original.amount):
        raise errors.IdempotencyKeyReused(
            f"{request.operation.value} for {request.transaction_id!r} disagrees with the "
            f"{original.operation.value} recorded for that id"
        )
