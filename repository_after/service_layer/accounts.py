"""Account-service use cases: debit, credit and their settlements, exactly once per key.

Each function runs inside one `AccountStore` transaction (see `ports`). The order inside is the
whole point:
1. an existing record for (operation, transaction id) answers first: the same request replays the
   stored reply, a different one is `idempotency_key_reused`;
2. tombstones fence late deliveries: a debit after its compensation, or a credit after its void, is
   refused and changes nothing;
3. write-time saga rules, for the operations of one saga (`saga_of`) on this database: a
   `compensate_debit` after the saga's credit applied is refused (`transfer_credited`), and a
   `credit` after the saga's debit was compensated (or tombstoned, `nothing_to_compensate`) is
   refused (`transfer_compensated`). Either would leave one transfer both refunded and paid:
   money created, which the audit reports as `compensated_and_credited` and now cannot happen
   through the API. The orchestrator never meets these refusals: it compensates only after a
   definite credit refusal or a `voided` settlement, and never credits after compensating;
4. business rejections (unknown account, insufficient funds, the saga rules of 3) are recorded
   like successes, so a retry with the same id gets the same answer even if circumstances changed.
Raised `BusinessError`s roll the transaction back (nothing recorded); returned `Reply`s commit.
Every check reads through the `AccountsTx` port inside the one transaction that writes, so every
backend (memory, SQLite, PostgreSQL) enforces the same rules without a race.
"""

from __future__ import annotations

from repository_after.domain import errors
from repository_after.domain.accounts import (
    Operation,
    OperationRecord,
    OperationRequest,
    OperationStatus,
    Reply,
    saga_of,
    step_key,
)
from repository_after.domain.money import MAX_BALANCE
from repository_after.service_layer.account_records import (
    original,
    record,
    reject,
    replay_if_recorded,
    require_agreement,
)
from repository_after.service_layer.ports import AccountsTx

#: Outcomes of a `compensate_debit` that roll its saga back: the debit was refunded, or it never
#: landed and a tombstone fences it out. (A refused compensation rolls nothing back.)
_ROLLED_BACK = frozenset({OperationStatus.COMPENSATED, OperationStatus.NOTHING_TO_COMPENSATE})


def _sibling(
    tx: AccountsTx, request: OperationRequest, operation: Operation
) -> OperationRecord | None:
    """The record of `operation` in the same saga as `request` (rebuilt from the ledger if
    retention purged it)."""
    return original(tx, operation, step_key(saga_of(request.transaction_id), operation))


def _apply(tx: AccountsTx, request: OperationRequest, sign: int) -> Reply:
    assert request.account_id is not None
    assert request.amount is not None
    account = tx.get_account(request.account_id)
    if account is None:
        return reject(
            tx, request, errors.AccountNotFound(f"account {request.account_id!r} does not exist")
        )
    if sign < 0 and account.balance < request.amount:
        return reject(
            tx,
            request,
            errors.InsufficientFunds(
                f"account {request.account_id!r} cannot cover {request.amount}"
            ),
        )
    if sign > 0 and account.balance + request.amount > MAX_BALANCE:
        return reject(
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
    return record(
        tx,
        request,
        OperationStatus.APPLIED,
        account_id=request.account_id,
        amount=request.amount,
        balance_after=balance,
        applied=True,
    )


def debit(tx: AccountsTx, request: OperationRequest) -> Reply:
    if (replay := replay_if_recorded(tx, request)) is not None:
        return replay
    compensation = _sibling(tx, request, Operation.COMPENSATE_DEBIT)
    if compensation is not None and compensation.status in _ROLLED_BACK:
        raise errors.TransactionCompensated(
            f"transaction {request.transaction_id!r} was compensated; its debit is refused"
        )
    return _apply(tx, request, -1)


def credit(tx: AccountsTx, request: OperationRequest) -> Reply:
    if (replay := replay_if_recorded(tx, request)) is not None:
        return replay
    void = _sibling(tx, request, Operation.VOID_CREDIT)
    if void is not None and void.status is OperationStatus.VOIDED:
        raise errors.TransactionVoided(
            f"transaction {request.transaction_id!r} was voided; its credit is refused"
        )
    compensation = _sibling(tx, request, Operation.COMPENSATE_DEBIT)
    if compensation is not None and compensation.status in _ROLLED_BACK:
        return reject(
            tx,
            request,
            errors.TransferCompensated(
                f"the debit of transfer {saga_of(request.transaction_id)!r} was compensated; "
                "its credit is refused"
            ),
        )
    return _apply(tx, request, +1)


def compensate_debit(tx: AccountsTx, request: OperationRequest) -> Reply:
    """Reverse the debit recorded for this id, once; with no applied debit, leave a tombstone."""
    if (replay := replay_if_recorded(tx, request)) is not None:
        return replay
    credit_record = _sibling(tx, request, Operation.CREDIT)
    if credit_record is not None and credit_record.applied:
        return reject(
            tx,
            request,
            errors.TransferCredited(
                f"transfer {saga_of(request.transaction_id)!r} was credited; "
                "its debit cannot be compensated"
            ),
        )
    debit_record = _sibling(tx, request, Operation.DEBIT)
    if debit_record is None or not debit_record.applied:
        return record(
            tx,
            request,
            OperationStatus.NOTHING_TO_COMPENSATE,
            account_id=request.account_id,
            amount=request.amount,
        )
    require_agreement(request, debit_record)
    assert debit_record.account_id is not None
    assert debit_record.amount is not None
    balance = tx.change_balance(
        debit_record.account_id,
        debit_record.amount,
        operation=Operation.COMPENSATE_DEBIT,
        transaction_id=request.transaction_id,
    )
    return record(
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
    if (replay := replay_if_recorded(tx, request)) is not None:
        return replay
    credit_record = _sibling(tx, request, Operation.CREDIT)
    if credit_record is not None and credit_record.applied:
        require_agreement(request, credit_record)
        return record(
            tx,
            request,
            OperationStatus.ALREADY_APPLIED,
            account_id=credit_record.account_id,
            amount=credit_record.amount,
        )
    return record(
        tx,
        request,
        OperationStatus.VOIDED,
        account_id=request.account_id,
        amount=request.amount,
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
