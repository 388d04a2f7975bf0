"""Account-side values: operations, their durable records, and the answers they replay.

Invariants the service layer keeps with these types:
- one `OperationRecord` per (operation, transaction id), written in the same local transaction as
  any balance change and ledger entry it causes;
- a record stores the exact answer (status code and JSON body) so a duplicate replays it;
- `applied` is true only when the record changed a balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

JsonBody = dict[str, Any]


#: Most operations one batch request may carry (`POST /batch`): 128 items of the longest ids
#: (~285 bytes each) stay well inside the 64 KiB body limit.
MAX_BATCH = 128


class Operation(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"
    COMPENSATE_DEBIT = "compensate_debit"
    VOID_CREDIT = "void_credit"


class OperationStatus(StrEnum):
    APPLIED = "applied"
    COMPENSATED = "compensated"
    NOTHING_TO_COMPENSATE = "nothing_to_compensate"
    VOIDED = "voided"
    ALREADY_APPLIED = "already_applied"
    REJECTED = "rejected"


#: Records that fence out a late request; retention never purges them.
TOMBSTONES = frozenset({OperationStatus.NOTHING_TO_COMPENSATE, OperationStatus.VOIDED})


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """What a caller asked for. `account_id`/`amount` are optional only for settlements."""

    operation: Operation
    transaction_id: str
    account_id: str | None
    amount: int | None

    def agrees_with(self, *, account_id: str | None, amount: int | None) -> bool:
        """True when every field given on both sides matches (None means "not given")."""
        return _same(self.account_id, account_id) and _same(self.amount, amount)


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: JsonBody
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class OperationRecord:
    operation: Operation
    transaction_id: str
    account_id: str | None
    amount: int | None
    status: OperationStatus
    applied: bool
    status_code: int
    body: JsonBody

    def replay(self) -> Reply:
        return Reply(self.status_code, self.body, replayed=True)


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    opening_balance: int
    balance: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: int
    account_id: str
    transaction_id: str
    operation: Operation
    delta: int
    balance_after: int
    created_at: str


def saga_of(transaction_id: str) -> str:
    """The saga an operation belongs to. Every saga's money steps (a transfer's debit and credit,
    an order's charge and payment) use the saga id as their key, so the transaction id IS the
    saga id; the write-time saga rules (a credit after the compensation, a compensation after
    the credit) relate operations through this function and `step_key`, so a later scheme of one
    key per step (`<saga>:<step>`) changes only these two functions."""
    return transaction_id


def step_key(saga_id: str, operation: Operation) -> str:
    """The transaction id under which `operation` of saga `saga_id` is recorded (see `saga_of`)."""
    del operation  # one key for every step today
    return saga_id


def _same(mine: object, theirs: object) -> bool:
    return mine is None or theirs is None or mine == theirs
