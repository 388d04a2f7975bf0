"""`sagabank audit` / GET /audit catch a deliberately corrupted SQLite database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import audit


async def healthy_books(path: Path) -> None:
    """Two accounts, one completed transfer (t1) and one compensated one (t2)."""
    store = SqliteAccountStore(path)
    try:
        await store.transaction(
            lambda tx: accounts.open_account(tx, account_id="a", initial_balance=1000)
        )
        await store.transaction(
            lambda tx: accounts.open_account(tx, account_id="b", initial_balance=0)
        )
        for operation, tx_id, account in [
            (Operation.DEBIT, "t1", "a"),
            (Operation.CREDIT, "t1", "b"),
            (Operation.DEBIT, "t2", "a"),
            (Operation.COMPENSATE_DEBIT, "t2", "a"),
        ]:
            request = OperationRequest(operation, tx_id, account, 100)
            await store.transaction(lambda tx, r=request: accounts.HANDLERS[r.operation](tx, r))
    finally:
        await store.close()


def corrupt(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def report_for(path: Path) -> list[str]:
    store = SqliteAccountStore(path)
    try:
        return (await store.read(audit)).violations
    finally:
        await store.close()


def run_cli_audit(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGABANK_DATABASE_URL": f"sqlite:///{path}"}
    return subprocess.run(
        [sys.executable, "-m", "repository_after.entrypoints.cli", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_healthy_books_pass_the_audit_and_the_cli_exits_zero(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await healthy_books(db)
    assert await report_for(db) == []
    result = run_cli_audit(db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit ok" in result.stdout


CORRUPTIONS = {
    "balance_mismatch": [
        "UPDATE accounts SET balance = balance + 5 WHERE account_id = 'b'",
        "UPDATE accounts SET opening_balance = opening_balance + 5 WHERE account_id = 'b'",
        "UPDATE accounts SET opening_balance = opening_balance - 5 WHERE account_id = 'b'",
    ],
    "not_conserved": [
        "UPDATE accounts SET balance = balance + 7, opening_balance ="
        " opening_balance WHERE account_id = 'a'"
    ],
    "negative_balance": ["UPDATE accounts SET balance = -1 WHERE account_id = 'b'"],
    "compensated_and_credited": [
        "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
        " balance_after, created_at) VALUES ('b', 't2', 'credit', 100, 200, 'x')",
        "UPDATE accounts SET balance = 200 WHERE account_id = 'b'",
    ],
    "money_created": [
        "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
        " balance_after, created_at) VALUES ('b', 't9', 'credit', 50, 150, 'x')",
        "UPDATE accounts SET balance = 150 WHERE account_id = 'b'",
    ],
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
async def test_the_audit_catches_a_corrupted_database(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "books.db"
    await healthy_books(db)
    corrupt(db, *CORRUPTIONS[kind])
    violations = await report_for(db)
    assert any(v.startswith(kind) for v in violations), violations
    result = run_cli_audit(db)
    assert result.returncode == 1
    assert "VIOLATION" in result.stdout


async def test_the_audit_catches_an_operation_applied_twice() -> None:
    # SQLite's UNIQUE(operation, transaction_id) makes this corruption impossible to write there,
    # so it is planted in the in-memory store, which has no such constraint.
    store = InMemoryAccountStore()
    await store.transaction(lambda tx: tx.insert_account("a", 0))
    for _ in range(2):
        await store.transaction(
            lambda tx: tx.change_balance("a", 5, operation=Operation.CREDIT, transaction_id="t")
        )
    violations = (await store.read(audit)).violations
    assert any(v.startswith("applied_twice: credit t") for v in violations), violations


def test_sqlite_refuses_to_store_an_operation_twice(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    SqliteAccountStore(db)  # creates the schema
    conn = sqlite3.connect(db)
    insert = (
        "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
        " balance_after, created_at) VALUES ('a', 't', 'credit', 1, 1, 'x')"
    )
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute(insert)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(insert)
    conn.close()
