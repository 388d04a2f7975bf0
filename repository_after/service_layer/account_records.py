"""The account service's durable answers: its `records.Book` for the kit's rules.

One `OperationRecord` per (operation, transaction id) holds the exact answer given, written in the
same local transaction as any balance change it causes, so a duplicate replays it byte for byte.
The records live in the account store's `operations` table (not the kit's `participant_records`):
beside them the ledger keeps every applied operation forever, and once retention purged a record,
an applied operation's answer is rebuilt from its ledger entry (`original`); purged refusals are
forgotten and decided afresh.

What the kit's rules compare a repeated call with (`Record.request`) is the record's account and
amount: for an action, the request's; for an applied compensation, the debit it refunded (so a
compensation that names another account or amount is refused even on replay).
"""

from __future__ import annotations

from typing import Any

import orjson

from repository_after.domain.accounts import Operation, OperationRecord, OperationStatus
from repository_after.participant_kit.records import Answer, Record, canonical
from repository_after.service_layer.ports import AccountsTx

Body = dict[str, Any]


def reply_body(
    transaction_id: str,
    operation: Operation,
    status: OperationStatus,
    account_id: str | None,
    amount: int | None,
    balance_after: int | None,
) -> Body:
    """The one shape of every answer that is not a refusal."""
    return {
        "transaction_id": transaction_id,
        "operation": operation.value,
        "account_id": account_id,
        "amount": amount,
        "balance_after": balance_after,
        "status": status.value,
    }


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
    body = reply_body(
        transaction_id, operation, status, entry.account_id, abs(entry.delta), entry.balance_after
    )
    return OperationRecord(
        operation, transaction_id, entry.account_id, abs(entry.delta), status, True, 200, body
    )


class AccountsBook:
    """The kit's `Book` over an `AccountsTx`: records in the account store, with ledger recall."""

    def get(self, tx: AccountsTx, operation: str, key: str, /) -> Record | None:
        found = original(tx, Operation(operation), key)
        if found is None:
            return None
        request = canonical({"account_id": found.account_id, "amount": found.amount})
        body = orjson.dumps(found.body).decode()
        return Record(request, found.status_code, body, found.applied)

    def put(
        self,
        tx: AccountsTx,
        operation: str,
        key: str,
        request: str,
        status_code: int,
        body: Body,
        applied: bool,
        /,
    ) -> Answer:
        # An answer names the account and amount it is about (the debit's, for a refund); a
        # refusal does not, so its record keeps the request's.
        about: Body = body if status_code == 200 else (orjson.loads(request) or {})
        status = OperationStatus(body["status"]) if status_code == 200 else OperationStatus.REJECTED
        tx.insert_record(
            OperationRecord(
                operation=Operation(operation),
                transaction_id=key,
                account_id=about.get("account_id"),
                amount=about.get("amount"),
                status=status,
                applied=applied,
                status_code=status_code,
                body=body,
            )
        )
        return Answer(status_code, orjson.dumps(body))
