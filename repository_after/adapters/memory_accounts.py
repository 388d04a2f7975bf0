"""In-memory account store: the fake for unit tests and the reference for the contract suite.

Transactions run inline on the event loop (so they are atomic among coroutines) against a copy of
the state that replaces the original only when `fn` returns: a raise leaves nothing behind.
Like the SQL stores it stamps records and ledger entries with `clock.utc_now` (the same text, so
retention's cutoff compares the same way) and refuses a negative balance with `StorageError`
(what the SQL stores raise for their CHECK).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from repository_after.domain.accounts import (
    TOMBSTONES,
    Account,
    LedgerEntry,
    Operation,
    OperationRecord,
)
from repository_after.service_layer.clock import utc_now as _now
from repository_after.service_layer.ports import (
    AccountsReader,
    AccountsTx,
    EntryTotal,
    StorageError,
)

T = TypeVar("T")


@dataclass
class _State:
    accounts: dict[str, Account] = field(default_factory=dict)
    records: dict[tuple[Operation, str], OperationRecord] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    record_times: dict[tuple[Operation, str], str] = field(default_factory=dict)
    purged_applied: int = 0


class _MemoryAccountsTx:
    def __init__(self, state: _State) -> None:
        self._s = state

    def lock(self, key: str) -> None:
        """Nothing to do: a transaction runs inline, alone on the event loop."""
        del key

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested scope: an exception leaving it restores the state as it was on entry."""
        saved = copy.deepcopy(self._s)
        try:
            yield
        except BaseException:
            self._s.__dict__.update(saved.__dict__)
            raise

    def get_account(self, account_id: str) -> Account | None:
        return self._s.accounts.get(account_id)

    def list_accounts(self) -> list[Account]:
        return [self._s.accounts[k] for k in sorted(self._s.accounts)]

    def list_entries(
        self, account_id: str, *, limit: int, before: int | None = None
    ) -> list[LedgerEntry]:
        mine = [
            e
            for e in reversed(self._s.entries)
            if e.account_id == account_id and (before is None or e.entry_id < before)
        ]
        return mine[:limit]

    def get_record(self, operation: Operation, transaction_id: str) -> OperationRecord | None:
        return self._s.records.get((operation, transaction_id))

    def entry_sums_by_account(self) -> dict[str, int]:
        sums: dict[str, int] = {}
        for entry in self._s.entries:
            sums[entry.account_id] = sums.get(entry.account_id, 0) + entry.delta
        return sums

    def entry_totals(self) -> Iterable[EntryTotal]:
        totals: dict[tuple[str, Operation], tuple[int, int]] = {}
        for e in self._s.entries:
            count, total = totals.get((e.transaction_id, e.operation), (0, 0))
            totals[(e.transaction_id, e.operation)] = (count + 1, total + abs(e.delta))
        return [EntryTotal(tx, op, c, t) for (tx, op), (c, t) in totals.items()]

    def get_entry(self, operation: Operation, transaction_id: str) -> LedgerEntry | None:
        for e in self._s.entries:
            if (e.operation, e.transaction_id) == (operation, transaction_id):
                return e
        return None

    def applied_record_count(self) -> int:
        return self._s.purged_applied + sum(1 for r in self._s.records.values() if r.applied)

    def purge_records(self, *, before: str) -> int:
        old = [
            k
            for k, r in self._s.records.items()
            if self._s.record_times[k] < before and r.status not in TOMBSTONES
        ]
        for key in old:
            self._s.purged_applied += self._s.records.pop(key).applied
            del self._s.record_times[key]
        return len(old)

    def insert_account(self, account_id: str, opening_balance: int) -> None:
        self._s.accounts[account_id] = Account(account_id, opening_balance, opening_balance)

    def insert_record(self, record: OperationRecord) -> None:
        key = (record.operation, record.transaction_id)
        if key in self._s.records:
            # What the SQL stores raise for the UNIQUE (operation, transaction_id) violation.
            raise StorageError(f"memory: duplicate operation record {key}")
        self._s.records[key] = record
        self._s.record_times[key] = _now()

    def change_balance(
        self, account_id: str, delta: int, *, operation: Operation, transaction_id: str
    ) -> int:
        account = self._s.accounts[account_id]
        balance = account.balance + delta
        if balance < 0:
            # What the SQL stores raise for the CHECK (balance >= 0) violation.
            raise StorageError(f"memory: balance of {account_id!r} would go negative ({balance})")
        self._s.accounts[account_id] = replace(account, balance=balance)
        self._s.entries.append(
            LedgerEntry(
                entry_id=len(self._s.entries) + 1,
                account_id=account_id,
                transaction_id=transaction_id,
                operation=operation,
                delta=delta,
                balance_after=balance,
                created_at=_now(),
            )
        )
        return balance


class InMemoryAccountStore:
    def __init__(self) -> None:
        self._state = _State()

    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T:
        draft = copy.deepcopy(self._state)
        result = fn(_MemoryAccountsTx(draft))
        self._state = draft
        return result

    async def read(self, fn: Callable[[AccountsReader], T]) -> T:
        return fn(_MemoryAccountsTx(self._state))

    async def close(self) -> None:
        return None
