"""Account-service use cases: debit, credit and their settlements, exactly once per key.

Each function runs inside one `AccountStore` transaction (see `ports`). The order inside is the
whole point:
1. an existing record for (operation, transaction id) answers first: the same request replays the
   stored reply, a different one is `idempotency_key_reused`;
2. tombstones fence late deliveries: a debit after its compensation, or a credit after its void, is
   refused and changes nothing;
3. business rejections (unknown account, insufficient funds) are recorded like successes, so a
   retry with the same id gets the same answer even if circumstances changed since.
Raised `BusinessError`s roll the transaction back (nothing recorded); returned `Reply`s commit.
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
from repository_after.domain.money import MAX_BALANCE
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


def _record(
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


def _reject(tx: AccountsTx, request: OperationRequest, error: errors.BusinessError) -> Reply:
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


def _original(tx: AccountsTx, operation: Operation, transaction_id: str) -> OperationRecord | None:
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


def _replay_if_recorded(tx: AccountsTx, request: OperationRequest) -> Reply | None:
    previous = _original(tx, request.operation, request.transaction_id)
    if previous is None:
        return None
    if not request.agrees_with(account_id=previous.account_id, amount=previous.amount):
        raise errors.IdempotencyKeyReused(
            f"transaction id {request.transaction_id!r} was already used for a different "
            f"{request.operation.value} request"
        )
    return previous.replay()


def _apply(tx: AccountsTx, request: OperationRequest, sign: int) -> Reply:
    assert request.account_id is not None
    assert request.amount is not None
    account = tx.get_account(request.account_id)
    if account is None:
        return _reject(
            tx, request, errors.AccountNotFound(f"account {request.account_id!r} does not exist")
        )
    if sign < 0 and account.balance < request.amount:
        return _reject(
            tx,
            request,
            errors.InsufficientFunds(
                f"account {request.account_id!r} cannot cover {request.amount}"
            ),
        )
    if sign > 0 and account.balance + request.amount > MAX_BALANCE:
        return _reject(
            tx,
            request,
            errors.BalanceLimitExceeded(f"account {request.account_id!r} would exceed the limit"),
        )
    balance = tx.change_balance(
        request.account_id,
        sign * request.amount,
        operation=request.operation,
        transaction_id=request.transaction_id,
    )
    return _record(
        tx,
        request,
        OperationStatus.APPLIED,
        account_id=request.account_id,
        amount=request.amount,
        balance_after=balance,
        applied=True,
    )


def debit(tx: AccountsTx, request: OperationRequest) -> Reply:
    if (replay := _replay_if_recorded(tx, request)) is not None:
        return replay
    if tx.get_record(Operation.COMPENSATE_DEBIT, request.transaction_id) is not None:
        raise errors.TransactionCompensated(
            f"transaction {request.transaction_id!r} was compensated; its debit is refused"
        )
    return _apply(tx, request, -1)


def credit(tx: AccountsTx, request: OperationRequest) -> Reply:
    if (replay := _replay_if_recorded(tx, request)) is not None:
        return replay
    void = tx.get_record(Operation.VOID_CREDIT, request.transaction_id)
    if void is not None and void.status is OperationStatus.VOIDED:
        raise errors.TransactionVoided(
            f"transaction {request.transaction_id!r} was voided; its credit is refused"
        )
    return _apply(tx, request, +1)


def compensate_debit(tx: AccountsTx, request: OperationRequest) -> Reply:
    """Reverse the debit recorded for this id, once; with no applied debit, leave a tombstone."""
    if (replay := _replay_if_recorded(tx, request)) is not None:
        return replay
    debit_record = _original(tx, Operation.DEBIT, request.transaction_id)
    if debit_record is None or not debit_record.applied:
        return _record(
            tx,
            request,
            OperationStatus.NOTHING_TO_COMPENSATE,
            account_id=request.account_id,
            amount=request.amount,
        )
    _require_agreement(request, debit_record)
    assert debit_record.account_id is not None
    assert debit_record.amount is not None
    balance = tx.change_balance(
        debit_record.account_id,
        debit_record.amount,
        operation=Operation.COMPENSATE_DEBIT,
        transaction_id=request.transaction_id,
    )
    return _record(
        tx,
        request,
        OperationStatus.COMPENSATED,
        account_id=debit_record.account_id,
        amount=debit_record.amount,
        balance_after=balance,
        applied=True,
    )


def void_credit(tx: AccountsTx, request: OperationRequest) -> Reply:
    """Settle an unknown credit: `already_applied` if it landed, else a tombstone (`voided`)."""
    if (replay := _replay_if_recorded(tx, request)) is not None:
        return replay
    credit_record = _original(tx, Operation.CREDIT, request.transaction_id)
    if credit_record is not None and credit_record.applied:
        _require_agreement(request, credit_record)
        return _record(
            tx,
            request,
            OperationStatus.ALREADY_APPLIED,
            account_id=credit_record.account_id,
            amount=credit_record.amount,
        )
    return _record(
        tx,
        request,
        OperationStatus.VOIDED,
        account_id=request.account_id,
        amount=request.amount,
    )


def _require_agreement(request: OperationRequest, original: OperationRecord) -> None:
    if not request.agrees_with(account_id=original.account_id, amount=original.amount):
        raise errors.IdempotencyKeyReused(
            f"{request.operation.value} for {request.transaction_id!r} disagrees with the "
            f"{original.operation.value} recorded for that id"
        )


HANDLERS = {
    Operation.DEBIT: debit,
    Operation.CREDIT: credit,
    Operation.COMPENSATE_DEBIT: compensate_debit,
    Operation.VOID_CREDIT: void_credit,
}


def open_account(tx: AccountsTx, *, account_id: str, initial_balance: int) -> None:
    if tx.get_account(account_id) is not None:
        raise errors.AccountExists(f"account {account_id!r} already exists")
    tx.insert_account(account_id, initial_balance)


def open_demo_accounts(tx: AccountsTx, *, count: int, balance: int) -> int:
    """On an empty database only, open acc-01..acc-NN with `balance` each; returns how many."""
    if tx.list_accounts():
        return 0
    for i in range(1, count + 1):
        tx.insert_account(f"acc-{i:02d}", balance)
    return count
