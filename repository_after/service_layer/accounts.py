"""Account-service use cases: debit, credit and their settlements, exactly once per key, decided
by the participant kit's rules (`participant_kit.rules`) over the account service's own books.

The account service is a kit participant (`OPERATIONS`): `debit`, compensated by
`compensate_debit`, and `credit`, settled by `void_credit`. What every participant gets from the
kit, in ONE transaction per call: a recorded answer is replayed (or the key's reuse refused,
422); a late debit after its compensation, or a late credit after its void, is fenced out (409)
and changes nothing; a compensation with no applied debit leaves the tombstone
`nothing_to_compensate`, a void with no applied credit the tombstone `voided`; a void of an
applied credit answers `already_applied`; refusals are recorded and replayed like successes.

What is the account service's own:
- the books (`AccountsBook`): records live in its `operations` table beside the ledger, and a
  record purged by retention is rebuilt from its ledger entry (kept forever), so a duplicate, a
  compensation or a void still sees an applied operation after `sagabank gc`;
- the answer shape: every answer, tombstones included, names the transaction, the operation,
  the account, the amount and the balance after (None when no balance changed);
- write-time saga rules for the operations of one saga (`saga_of`): a `compensate_debit` after
  the saga's credit applied is refused (`transfer_credited`, the compensation's `guard`), and a
  `credit` after the saga's debit was rolled back (compensated, or tombstoned) is refused
  (`transfer_compensated`). Either would leave one transfer both refunded and paid: money
  created, which the audit reports as `compensated_and_credited` and now cannot happen through
  the API. The orchestrator never meets these refusals: it compensates only after a definite
  credit refusal or a `voided` settlement, and never credits after compensating.
`perform(tx, request)` (or `answer`, its exact bytes) runs one request inside the caller's
transaction: a `Reply` commits; a raised `BusinessError` (key reuse, a fence) must roll it back
(nothing recorded).
"""

from __future__ import annotations

from typing import Any

import orjson

from repository_after.domain import errors
from repository_after.domain.accounts import (
    Operation,
    OperationRequest,
    OperationStatus,
    Reply,
    saga_of,
    step_key,
)
from repository_after.domain.money import MAX_BALANCE
from repository_after.participant_kit.core import Operations
from repository_after.participant_kit.records import Answer
from repository_after.participant_kit.rules import Compensation, Refusal, Rejected
from repository_after.service_layer.account_records import AccountsBook, original, reply_body
from repository_after.service_layer.ports import AccountsTx

Body = dict[str, Any]

#: Outcomes of a `compensate_debit` that roll its saga back: the debit was refunded, or it never
#: landed and a tombstone fences it out. (A refused compensation rolls nothing back.)
_ROLLED_BACK = frozenset({OperationStatus.COMPENSATED, OperationStatus.NOTHING_TO_COMPENSATE})


def _refusal(error: errors.BusinessError) -> Refusal:
    return Refusal(error.code, error.message, error.http_status)


def _applied(tx: AccountsTx, operation: Operation, key: str, body: Body) -> Body:
    account_id, amount = body["account_id"], body["amount"]
    account = tx.get_account(account_id)
    if account is None:
        raise _refusal(errors.AccountNotFound(f"account {account_id!r} does not exist"))
    if operation is Operation.DEBIT:
        if account.balance < amount:
            raise _refusal(
                errors.InsufficientFunds(f"account {account_id!r} cannot cover {amount}")
            )
        delta = -amount
    else:
        if account.balance + amount > MAX_BALANCE:
            raise _refusal(
                errors.BalanceLimitExceeded(f"account {account_id!r} would exceed the limit")
            )
        delta = amount
    balance = tx.change_balance(account_id, delta, operation=operation, transaction_id=key)
    return reply_body(key, operation, OperationStatus.APPLIED, account_id, amount, balance)


def _sibling_status(tx: AccountsTx, key: str, operation: Operation) -> OperationStatus | None:
    """The status of `operation` in the same saga as the call under `key` (rebuilt from the
    ledger if retention purged it), or None."""
    found = original(tx, operation, step_key(saga_of(key), operation))
    return None if found is None else found.status


def _debit(tx: AccountsTx, key: str, body: Body) -> Body:
    return _applied(tx, Operation.DEBIT, key, body)


def _credit(tx: AccountsTx, key: str, body: Body) -> Body:
    if _sibling_status(tx, key, Operation.COMPENSATE_DEBIT) in _ROLLED_BACK:
        raise _refusal(
            errors.TransferCompensated(
                f"the debit of transfer {saga_of(key)!r} was compensated; its credit is refused"
            )
        )
    return _applied(tx, Operation.CREDIT, key, body)


def _not_after_the_credit(tx: AccountsTx, key: str, body: Body | None) -> None:
    """A compensation's guard: once the saga's credit applied, its debit stays."""
    del body  # the rule is about the saga, not this call's account or amount
    credit = original(tx, Operation.CREDIT, step_key(saga_of(key), Operation.CREDIT))
    if credit is not None and credit.applied:
        raise _refusal(
            errors.TransferCredited(
                f"transfer {saga_of(key)!r} was credited; its debit cannot be compensated"
            )
        )


def _compensate_debit(tx: AccountsTx, key: str, debit: Body) -> Body:
    """Refund the applied debit (the kit passes its recorded answer), once."""
    account_id, amount = debit["account_id"], debit["amount"]
    balance = tx.change_balance(
        account_id, amount, operation=Operation.COMPENSATE_DEBIT, transaction_id=key
    )
    return reply_body(
        key, Operation.COMPENSATE_DEBIT, OperationStatus.COMPENSATED, account_id, amount, balance
    )


def _tombstone(
    operation: str, key: str, status: str, data: Body | None, applied: Body | None
) -> Body:
    """A tombstone names the request's account and amount; `already_applied` the credit's."""
    source = applied if applied is not None else (data or {})
    return reply_body(
        key,
        Operation(operation),
        OperationStatus(status),
        source.get("account_id"),
        source.get("amount"),
        None,
    )


OPERATIONS: Operations[AccountsTx] = Operations("accounts", AccountsBook())
OPERATIONS.action(
    Operation.DEBIT.value,
    None,
    _debit,
    compensation=Compensation(
        Operation.COMPENSATE_DEBIT.value, _compensate_debit, _not_after_the_credit
    ),
    tombstone=_tombstone,
)
OPERATIONS.action(
    Operation.CREDIT.value,
    None,
    _credit,
    settlement=Operation.VOID_CREDIT.value,
    tombstone=_tombstone,
)

#: What a kit rule's unrecorded refusal is, in the account service's own errors.
_REJECTIONS: dict[str, type[errors.BusinessError]] = {
    errors.IdempotencyKeyReused.code: errors.IdempotencyKeyReused,
    errors.TransactionCompensated.code: errors.TransactionCompensated,
    errors.TransactionVoided.code: errors.TransactionVoided,
}


def request_data(request: OperationRequest) -> Body:
    """The call's body as the rules see it. A settlement's fields are optional checks: one not
    given is None, which the rules compare with nothing (`rules.agrees`)."""
    return {"account_id": request.account_id, "amount": request.amount}


def answer(tx: AccountsTx, request: OperationRequest) -> Answer:
    """Decide `request` inside `tx` (which the caller commits); the answer's exact bytes.
    Raises the `BusinessError` of a refusal that must not be recorded (roll back)."""
    try:
        return OPERATIONS.decide(
            tx, request.operation.value, request.transaction_id, request_data(request)
        )
    except Rejected as rejected:
        raise _REJECTIONS[rejected.code](rejected.message) from None


def perform(tx: AccountsTx, request: OperationRequest) -> Reply:
    """`answer`, as a `Reply` (its body parsed)."""
    found = answer(tx, request)
    return Reply(found.status_code, orjson.loads(found.body), found.replayed)


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
