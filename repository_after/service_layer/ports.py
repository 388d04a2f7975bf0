"""Ports of the account service: what the use cases need from storage.

`AccountStore.transaction(fn)` runs `fn` against an `AccountsTx` inside one local database
transaction: committed if `fn` returns, rolled back if it raises. Adapters serialise these
transactions per account store, so a use case may read, decide and write without a race; the
`UNIQUE(operation, transaction_id)` constraint backs that up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from repository_after.domain.accounts import Account, LedgerEntry, Operation, OperationRecord

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EntryTotal:
    """Ledger entries grouped by (transaction id, operation)."""

    transaction_id: str
    operation: Operation
    count: int
    total: int


class AccountsReader(Protocol):
    def get_account(self, account_id: str) -> Account | None: ...

    def list_accounts(self) -> list[Account]: ...

    def list_entries(
        self, account_id: str, *, limit: int, before: int | None = None
    ) -> list[LedgerEntry]:
        """Up to `limit` entries, newest first; with `before` (an entry id), only older ones:
        the next page of a listing that goes on from its oldest entry, never a duplicate."""
        ...

    def get_record(self, operation: Operation, transaction_id: str) -> OperationRecord | None: ...

    def get_entry(self, operation: Operation, transaction_id: str) -> LedgerEntry | None:
        """The ledger entry an applied operation left (kept forever, unlike its record)."""
        ...

    def entry_sums_by_account(self) -> dict[str, int]: ...

    def entry_totals(self) -> Iterable[EntryTotal]: ...

    def applied_record_count(self) -> int:
        """Applied operation records ever written, those purged by retention included."""
        ...


class AccountsTx(AccountsReader, Protocol):
    def lock(self, key: str) -> None:
        """Serialise, until the transaction ends, with every other transaction locking `key`
        (what the participant kit's rules call first)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested scope: an exception leaving it undoes only what was done inside."""
        ...

    def insert_account(self, account_id: str, opening_balance: int) -> None: ...

    def insert_record(self, record: OperationRecord) -> None: ...

    def purge_records(self, *, before: str) -> int:
        """Delete operation records created before `before` (ISO time), except tombstones
        (`nothing_to_compensate`, `voided`), adding them to the retention totals; returns how
        many."""
        ...

    def change_balance(
        self, account_id: str, delta: int, *, operation: Operation, transaction_id: str
    ) -> int:
        """Add `delta` to the balance, append its ledger entry, return the new balance."""
        ...


class AccountStore(Protocol):
    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T: ...

    async def read(self, fn: Callable[[AccountsReader], T]) -> T: ...

    async def close(self) -> None: ...


class StorageError(Exception):
    """A storage backend failed (locked, disk full, connection lost): an unknown outcome."""
