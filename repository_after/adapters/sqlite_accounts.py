"""SQLite adapter of the account store.

Schema invariants: `operations` has one row per (operation, transaction_id) (primary key);
`ledger_entries` one row per balance change, unique per (operation, transaction_id) as a second
line of defence; `accounts.balance` is CHECKed non-negative. A use case's record, ledger entry and
balance change commit in one transaction (see `SqliteDatabase`). The tables are created and
versioned by `migrations` (component `accounts`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.domain.accounts import (
    TOMBSTONES,
    Account,
    LedgerEntry,
    Operation,
    OperationRecord,
    OperationStatus,
)
from repository_after.service_layer.ports import AccountsReader, AccountsTx, EntryTotal

T = TypeVar("T")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _SqliteAccountsTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get_account(self, account_id: str) -> Account | None:
        row = self._conn.execute(
            "SELECT account_id, opening_balance, balance FROM accounts WHERE account_id = ?",
            (account_id,),
        ).fetchone()
        return Account(*row) if row else None

    def list_accounts(self) -> list[Account]:
        rows = self._conn.execute(
            "SELECT account_id, opening_balance, balance FROM accounts ORDER BY account_id"
        )
        return [Account(*row) for row in rows]

    def list_entries(self, account_id: str, *, limit: int) -> list[LedgerEntry]:
        rows = self._conn.execute(
            "SELECT entry_id, account_id, transaction_id, operation, delta, balance_after,"
            " created_at FROM ledger_entries WHERE account_id = ? ORDER BY entry_id DESC LIMIT ?",
            (account_id, limit),
        )
        return [LedgerEntry(r[0], r[1], r[2], Operation(r[3]), r[4], r[5], r[6]) for r in rows]

    def get_record(self, operation: Operation, transaction_id: str) -> OperationRecord | None:
        row = self._conn.execute(
            "SELECT account_id, amount, status, applied, status_code, body FROM operations"
            " WHERE operation = ? AND transaction_id = ?",
            (operation.value, transaction_id),
        ).fetchone()
        if row is None:
            return None
        return OperationRecord(
            operation=operation,
            transaction_id=transaction_id,
            account_id=row[0],
            amount=row[1],
            status=OperationStatus(row[2]),
            applied=bool(row[3]),
            status_code=row[4],
            body=json.loads(row[5]),
        )

    def entry_sums_by_account(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT account_id, SUM(delta) FROM ledger_entries GROUP BY account_id"
        )
        return dict(rows)

    def entry_totals(self) -> Iterable[EntryTotal]:
        rows = self._conn.execute(
            "SELECT transaction_id, operation, COUNT(*), SUM(ABS(delta)) FROM ledger_entries"
            " GROUP BY transaction_id, operation"
        )
        return [EntryTotal(r[0], Operation(r[1]), r[2], r[3]) for r in rows]

    def get_entry(self, operation: Operation, transaction_id: str) -> LedgerEntry | None:
        row = self._conn.execute(
            "SELECT entry_id, account_id, transaction_id, operation, delta, balance_after,"
            " created_at FROM ledger_entries WHERE operation = ? AND transaction_id = ?",
            (operation.value, transaction_id),
        ).fetchone()
        if row is None:
            return None
        return LedgerEntry(row[0], row[1], row[2], Operation(row[3]), row[4], row[5], row[6])

    def applied_record_count(self) -> int:
        row = self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM operations WHERE applied)"
            " + COALESCE((SELECT purged_applied FROM retention_totals"
            " WHERE component = 'operations'), 0)"
        ).fetchone()
        return int(row[0])

    def purge_records(self, *, before: str) -> int:
        kept = tuple(status.value for status in TOMBSTONES)
        old = "created_at < ? AND status NOT IN (?, ?)"
        purged, applied = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN applied THEN 1 ELSE 0 END), 0)"
            f" FROM operations WHERE {old}",
            (before, *kept),
        ).fetchone()
        if purged:
            self._conn.execute(f"DELETE FROM operations WHERE {old}", (before, *kept))
            self._conn.execute(
                "INSERT INTO retention_totals (component, purged, purged_applied)"
                " VALUES ('operations', ?, ?) ON CONFLICT (component) DO UPDATE SET"
                " purged = retention_totals.purged + excluded.purged,"
                " purged_applied = retention_totals.purged_applied + excluded.purged_applied",
                (purged, applied),
            )
        return int(purged)

    def insert_account(self, account_id: str, opening_balance: int) -> None:
        self._conn.execute(
            "INSERT INTO accounts (account_id, opening_balance, balance, created_at)"
            " VALUES (?, ?, ?, ?)",
            (account_id, opening_balance, opening_balance, _now()),
        )

    def insert_record(self, record: OperationRecord) -> None:
        self._conn.execute(
            "INSERT INTO operations (operation, transaction_id, account_id, amount, status,"
            " applied, status_code, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.operation.value,
                record.transaction_id,
                record.account_id,
                record.amount,
                record.status.value,
                int(record.applied),
                record.status_code,
                json.dumps(record.body, separators=(",", ":")),
                _now(),
            ),
        )

    def change_balance(
        self, account_id: str, delta: int, *, operation: Operation, transaction_id: str
    ) -> int:
        (balance,) = self._conn.execute(
            "UPDATE accounts SET balance = balance + ? WHERE account_id = ? RETURNING balance",
            (delta, account_id),
        ).fetchone()
        self._conn.execute(
            "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
            " balance_after, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, transaction_id, operation.value, delta, balance, _now()),
        )
        return int(balance)


class SqliteAccountStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, component="accounts")
        self.path = path

    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T:
        return await self._db.write(lambda conn: fn(_SqliteAccountsTx(conn)))

    async def read(self, fn: Callable[[AccountsReader], T]) -> T:
        return await self._db.read(lambda conn: fn(_SqliteAccountsTx(conn)))

    async def close(self) -> None:
        await self._db.close()
