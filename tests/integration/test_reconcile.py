"""Every cent in flight has an owner: `sagabank audit`, `/audit` (role all) and the dashboard's
books reconcile the account service's ledger with the saga log (service_layer/reconcile.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.domain.saga_definition import EventKind, SagaEvent
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import AuditReport
from repository_after.service_layer.reconcile import reconcile
from tests.conftest import Launcher
from tests.integration.test_audit import corrupt, healthy_books

START = SagaEvent(kind=EventKind.STARTED, at="2026-12-04T00:00:00+00:00")


async def debit(path: Path, tx_id: str, account: str = "a", amount: int = 100) -> None:
    store = SqliteAccountStore(path)
    try:
        request = OperationRequest(Operation.DEBIT, tx_id, account, amount)
        await store.transaction(lambda tx: accounts.HANDLERS[request.operation](tx, request))
    finally:
        await store.close()


async def saga(path: Path, saga_id: str, status: str, **params: Any) -> None:
    log = SqliteSagaLog(path)
    try:
        await log.create(
            saga_id=saga_id, definition="transfer", params=params, events=[START], status=status
        )
    finally:
        await log.close()


async def reconciled(path: Path) -> AuditReport:
    store = SqliteAccountStore(path)
    log = SqliteSagaLog(path)
    try:
        return await reconcile(store, log)
    finally:
        await log.close()
        await store.close()


def run_cli_audit(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repository_after.entrypoints.cli", "audit"],
        env={**os.environ, "SAGABANK_DATABASE_URL": f"sqlite:///{path}", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def books_with_sagas(path: Path) -> None:
    """healthy_books' t1 (completed) and t2 (compensated), with their sagas in the log."""
    await healthy_books(path)
    transfer = {"source": "a", "target": "b", "amount": 100}
    await saga(path, "t1", "completed", **transfer)
    await saga(path, "t2", "compensated", **transfer)


async def test_a_hand_made_debit_no_saga_knows_is_an_orphan(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    await debit(db, "stray")
    report = await reconciled(db)
    assert not report.ok
    assert (report.reconciled, report.orphans, report.orphaned_in_flight) == (True, ["stray"], 100)
    assert report.owned_in_flight == 0
    assert any(v.startswith("orphaned: stray") for v in report.violations), report.violations
    result = run_cli_audit(db)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "orphaned: stray" in result.stdout


async def test_a_running_sagas_debit_is_owned_and_the_audit_passes(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    await debit(db, "s1", amount=40)
    await saga(db, "s1", "crediting", source="a", target="b", amount=40)
    report = await reconciled(db)
    assert report.violations == []
    assert (report.in_flight, report.owned_in_flight, report.orphans) == (40, 40, [])
    assert report.sagas_checked == 2
    result = run_cli_audit(db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "owned by unsettled sagas: 40" in result.stdout


SETTLED_CORRUPTIONS = {
    # t1's credit vanished from the ledger (and b's balance with it): the books alone see only
    # money in flight; the saga log says t1 completed.
    "credit_missing": [
        "DELETE FROM ledger_entries WHERE transaction_id = 't1' AND operation = 'credit'",
        "UPDATE accounts SET balance = 0 WHERE account_id = 'b'",
    ],
    # t1's credit landed on the wrong account: every book-level check still holds.
    "credit_to_the_wrong_account": [
        "UPDATE ledger_entries SET account_id = 'a' WHERE transaction_id = 't1'"
        " AND operation = 'credit'",
        "UPDATE accounts SET balance = balance + 100 WHERE account_id = 'a'",
        "UPDATE accounts SET balance = balance - 100 WHERE account_id = 'b'",
    ],
}


@pytest.mark.parametrize("kind", SETTLED_CORRUPTIONS)
async def test_a_completed_transfer_the_ledger_disagrees_with_is_a_violation(
    tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    assert (await reconciled(db)).violations == []
    corrupt(db, *SETTLED_CORRUPTIONS[kind])
    report = await reconciled(db)
    assert any(
        v.startswith("saga_mismatch: t1 completed but no credit of 100 to b")
        for v in report.violations
    ), report.violations
    result = run_cli_audit(db)
    assert result.returncode == 1
    assert "saga_mismatch: t1" in result.stdout


async def test_compensated_and_rejected_sagas_are_checked_against_the_ledger(
    tmp_path: Path,
) -> None:
    db = tmp_path / "books.db"
    await healthy_books(db)
    transfer = {"source": "a", "target": "b", "amount": 100}
    await saga(db, "t1", "rejected", **transfer)  # yet t1 moved money
    await saga(db, "t2", "completed", **transfer)  # yet t2 was compensated
    violations = (await reconciled(db)).violations
    assert "saga_mismatch: t1 rejected but money moved" in violations
    assert any(v.startswith("saga_mismatch: t2 completed but no credit") for v in violations)


async def test_the_accounts_role_says_it_did_not_reconcile(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    result = run_cli_audit(db, SAGABANK_ROLE="accounts")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not reconciled with a saga log" in result.stdout


def test_audit_and_the_dashboard_name_the_orphan(launch: Launcher) -> None:
    service = launch(role="all", name="all", demo_accounts=2)
    account = httpx.get(f"{service.url}/accounts").json()["accounts"][0]["account_id"]
    debited = httpx.post(
        f"{service.url}/debit",
        json={"account_id": account, "amount": 25},
        headers={"transaction-id": "hand-made"},
    )
    assert debited.status_code == 200, debited.text
    audit = httpx.get(f"{service.url}/audit").json()
    assert (audit["ok"], audit["reconciled"], audit["orphans"]) == (False, True, ["hand-made"])
    books = httpx.get(f"{service.url}/ui/api/books").json()
    assert books["audit"]["orphans"] == ["hand-made"]
    assert books["audit"]["orphaned_in_flight"] == 25


def test_the_accounts_role_route_does_not_reconcile(launch: Launcher) -> None:
    service = launch(role="accounts", name="accounts", demo_accounts=2)
    audit = httpx.get(f"{service.url}/audit").json()
    assert (audit["ok"], audit["reconciled"], audit["orphans"]) == (True, False, [])
