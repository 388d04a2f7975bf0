"""`sagabank audit` / GET /audit catch a deliberately corrupted SQLite database.

Each corruption asserts the audit's exact answer: every violation line with its figures, and the
money in flight, so an audit that names the right kind with the wrong amount (or adds a false
alarm beside the true one) fails here. The healthy books keep an account nobody touched, with a
zero balance: no ledger entry and nothing negative must not read as a violation."""

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
from repository_after.service_layer.audit import AuditReport, audit


async def healthy_books(path: Path) -> None:
    """Accounts a (1000 opened), b and c (0 opened, c never touched), one completed transfer
    (t1, a -> b, 100) and one compensated one (t2, a, 100): balances a 900, b 100, c 0."""
    store = SqliteAccountStore(path)
    try:
        for account_id, opening in (("a", 1000), ("b", 0), ("c", 0)):
            await store.transaction(
                lambda tx, i=account_id, o=opening: accounts.open_account(
                    tx, account_id=i, initial_balance=o
                )
            )
        for operation, tx_id, account in [
            (Operation.DEBIT, "t1", "a"),
            (Operation.CREDIT, "t1", "b"),
            (Operation.DEBIT, "t2", "a"),
            (Operation.COMPENSATE_DEBIT, "t2", "a"),
        ]:
            request = OperationRequest(operation, tx_id, account, 100)
            await store.transaction(lambda tx, r=request: accounts.perform(tx, r))
    finally:
        await store.close()


def corrupt(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def entry(account: str, tx_id: str, operation: str, delta: int) -> str:
    """SQL planting one ledger entry (no operation record, no balance change: say those apart)."""
    return (
        "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
        f" balance_after, created_at) VALUES ('{account}', '{tx_id}', '{operation}', {delta}, 0,"
        " 'x')"
    )


async def report_for(path: Path) -> AuditReport:
    store = SqliteAccountStore(path)
    try:
        return await store.read(audit)
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
    assert (await report_for(db)).as_dict() == {
        "accounts": 3,
        "total_opened": 1000,
        "total_balance": 1000,
        "in_flight": 0,
        "applied_operations": 4,  # t1's debit and credit, t2's debit and compensation
        "violations": [],
        "reconciled": False,  # the book audit alone never claims the saga log's answer
        "owned_in_flight": 0,
        "orphaned_in_flight": 0,
        "orphans": [],
        "sagas_checked": 0,
        "ok": True,
    }
    result = run_cli_audit(db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit ok" in result.stdout


#: kind -> (the SQL that corrupts the healthy books, the audit's exact violations, in flight)
CORRUPTIONS: dict[str, tuple[list[str], list[str], int]] = {
    # 5 moved from a to b without a ledger entry: the sum still holds, each balance lies.
    "balance_mismatch": (
        [
            "UPDATE accounts SET balance = balance - 5 WHERE account_id = 'a'",
            "UPDATE accounts SET balance = balance + 5 WHERE account_id = 'b'",
        ],
        [
            "balance_mismatch: a holds 895, ledger says 900",
            "balance_mismatch: b holds 105, ledger says 100",
        ],
        0,
    ),
    # Two debits nobody credited or compensated: the ledger explains each balance, the sum is
    # short by both amounts together.
    "not_conserved": (
        [
            entry("a", "lost1", "debit", -30),
            entry("a", "lost2", "debit", -40),
            "UPDATE accounts SET balance = 830 WHERE account_id = 'a'",
        ],
        ["not_conserved: balances sum to 930, 1000 was opened (70 in flight)"],
        70,
    ),
    # b's opening lowered to match: only the sign is wrong.
    "negative_balance": (
        ["UPDATE accounts SET opening_balance = -101, balance = -1 WHERE account_id = 'b'"],
        ["negative_balance: b holds -1"],
        0,
    ),
    "compensated_and_credited": (
        [
            entry("b", "t2", "credit", 100),
            "UPDATE accounts SET balance = 200 WHERE account_id = 'b'",
        ],
        [
            "compensated_and_credited: t2",
            "money_created: t2 credited 100 against a net debit of 0",
            "not_conserved: balances sum to 1100, 1000 was opened (-100 in flight)",
        ],
        -100,
    ),
    # A credit with no debit at all.
    "money_created": (
        [
            entry("b", "t9", "credit", 50),
            "UPDATE accounts SET balance = 150 WHERE account_id = 'b'",
        ],
        [
            "money_created: t9 credited 50 against a net debit of 0",
            "not_conserved: balances sum to 1050, 1000 was opened (-50 in flight)",
        ],
        -50,
    ),
    # More credited than debited.
    "money_created_beyond_the_debit": (
        [
            entry("a", "t8", "debit", -30),
            entry("b", "t8", "credit", 50),
            "UPDATE accounts SET balance = 870 WHERE account_id = 'a'",
            "UPDATE accounts SET balance = 150 WHERE account_id = 'b'",
        ],
        [
            "money_created: t8 credited 50 against a net debit of 30",
            "not_conserved: balances sum to 1020, 1000 was opened (-20 in flight)",
        ],
        -20,
    ),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
async def test_the_audit_catches_a_corrupted_database(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "books.db"
    await healthy_books(db)
    statements, violations, in_flight = CORRUPTIONS[kind]
    corrupt(db, *statements)
    report = await report_for(db)
    assert (report.violations, report.in_flight) == (violations, in_flight)
    assert not report.ok
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
    report = await store.read(audit)
    assert report.violations == [
        "applied_twice: credit t applied 2 times",
        "money_created: t credited 10 against a net debit of 0",
        "not_conserved: balances sum to 10, 0 was opened (-10 in flight)",
    ]
    assert report.in_flight == -10


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
