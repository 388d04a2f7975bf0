"""PostgreSQL adapter of the account store, safe for several account-service replicas.

Same tables and invariants as SQLite (created by `migrations`, component `accounts`). SQLite gets
its serialisation from one writer; here each use case's transaction serialises what it touches:
- the first lookup of a record for a transaction id takes `pg_advisory_xact_lock` on that id, so
  duplicates of one request, or a debit and its compensation, never interleave, even when they
  reach different replicas (every use case starts by looking up its own record);
- `get_account` in a write transaction is `SELECT … FOR UPDATE`, so two debits of one account on
  different replicas read-decide-write one after the other and never overdraw;
- `UNIQUE(operation, transaction_id)` stays as the backstop: a violation retries the transaction
  once (`PostgresDatabase`), which then replays the winner's reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from repository_after.adapters.postgres_db import PostgresDatabase
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
Conn = psycopg.Connection[tuple[Any, ...]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _PostgresAccountsTx:
    def __init__(self, conn: Conn, *, writing: bool) -> None:
        self._conn = conn
        self._writing = writing
        self._locked: set[str] = set()

    def _lock_transaction_id(self, transaction_id: str) -> None:
        if self._writing and transaction_id not in self._locked:
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (transaction_id,)
            )
            self._locked.add(transaction_id)

    def get_account(self, account_id: str) -> Account | None:
        lock = " FOR UPDATE" if self._writing else ""
        row = self._conn.execute(
            "SELECT account_id, opening_balance, balance FROM accounts WHERE account_id = %s"
            + lock,
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
            " created_at FROM ledger_entries WHERE account_id = %s"
            " ORDER BY entry_id DESC LIMIT %s",
            (account_id, limit),
        )
        return [LedgerEntry(r[0], r[1], r[2], Operation(r[3]), r[4], r[5], r[6]) for r in rows]

    def get_record(self, operation: Operation, transaction_id: str) -> OperationRecord | None:
        self._lock_transaction_id(transaction_id)
        row = self._conn.execute(
            "SELECT account_id, amount, status, applied, status_code, body FROM operations"
            " WHERE operation = %s AND transaction_id = %s",
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
            "SELECT account_id, SUM(delta)::bigint FROM ledger_entries GROUP BY account_id"
        )
        return {r[0]: int(r[1]) for r in rows}

    def entry_totals(self) -> Iterable[EntryTotal]:
        rows = self._conn.execute(
            "SELECT transaction_id, operation, COUNT(*), SUM(ABS(delta))::bigint"
            " FROM ledger_entries GROUP BY transaction_id, operation"
        )
        return [EntryTotal(r[0], Operation(r[1]), int(r[2]), int(r[3])) for r in rows]

    def get_entry(self, operation: Operation, transaction_id: str) -> LedgerEntry | None:
        row = self._conn.execute(
            "SELECT entry_id, account_id, transaction_id, operation, delta, balance_after,"
            " created_at FROM ledger_entries WHERE operation = %s AND transaction_id = %s",
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
        assert row is not None
        return int(row[0])

    def purge_records(self, *, before: str) -> int:
        kept = tuple(status.value for status in TOMBSTONES)
        old = "created_at < %s AND status NOT IN (%s, %s)"
        counts = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN applied THEN 1 ELSE 0 END), 0)"
            f" FROM operations WHERE {old}",
            (before, *kept),
        ).fetchone()
        assert counts is not None
        purged, applied = counts
        if purged:
            self._conn.execute(f"DELETE FROM operations WHERE {old}", (before, *kept))
            self._conn.execute(
                "INSERT INTO retention_totals (component, purged, purged_applied)"
                " VALUES ('operations', %s, %s) ON CONFLICT (component) DO UPDATE SET"
                " purged = retention_totals.purged + excluded.purged,"
                " purged_applied = retention_totals.purged_applied + excluded.purged_applied",
                (purged, applied),
            )
        return int(purged)

    def insert_account(self, account_id: str, opening_balance: int) -> None:
        self._conn.execute(
            "INSERT INTO accounts (account_id, opening_balance, balance, created_at)"
            " VALUES (%s, %s, %s, %s)",
            (account_id, opening_balance, opening_balance, _now()),
        )

    def insert_record(self, record: OperationRecord) -> None:
        self._lock_transaction_id(record.transaction_id)
        self._conn.execute(
            "INSERT INTO operations (operation, transaction_id, account_id, amount, status,"
            " applied, status_code, body, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                record.operation.value,
                record.transaction_id,
                record.account_id,
                record.amount,
                record.status.value,
                record.applied,
                record.status_code,
                json.dumps(record.body, separators=(",", ":")),
                _now(),
            ),
        )

    def change_balance(
        self, account_id: str, delta: int, *, operation: Operation, transaction_id: str
    ) -> int:
        row = self._conn.execute(
            "UPDATE accounts SET balance = balance + %s WHERE account_id = %s RETURNING balance",
            (delta, account_id),
        ).fetchone()
        assert row is not None, account_id
        balance = int(row[0])
        self._conn.execute(
            "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
            " balance_after, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, transaction_id, operation.value, delta, balance, _now()),
        )
        return balance


class PostgresAccountStore:
    def __init__(self, database_url: str) -> None:
        self._db = PostgresDatabase(database_url, component="accounts")

    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T:
        return await self._db.transaction(lambda conn: fn(_PostgresAccountsTx(conn, writing=True)))

    async def read(self, fn: Callable[[AccountsReader], T]) -> T:
        def snapshot(conn: Conn) -> T:
            # One snapshot for the whole read, so an audit under load sees consistent books.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return fn(_PostgresAccountsTx(conn, writing=False))

        return await self._db.transaction(snapshot)

    async def close(self) -> None:
        await self._db.close()
