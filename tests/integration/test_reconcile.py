"""Every cent in flight has an owner: `sagabank audit`, `/audit` (role all) and the dashboard's
books reconcile the account service's ledger with the saga log (service_layer/reconcile.py).

Every verdict the reconciliation can give is produced here on a deliberately corrupted database
(or a saga log that disagrees with the ledger) and asserted exactly, figures included: orphaned
and owned money summed over several transactions (down to one cent), money in flight under each
settled status, each way a settled transfer can disagree with its ledger entries, conservation
restated with the money in flight, and the cap on the settled sagas read back. The healthy cases
beside them (a tombstoned compensation, a clean rejection, books after retention purged the
operation records) prove those verdicts are not raised where nothing is wrong."""

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
from repository_after.domain.transfer import TRANSFER as TRANSFER_DEFINITION
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import AuditReport, audit
from repository_after.service_layer.reconcile import reconcile
from tests.conftest import Launcher
from tests.integration.test_audit import corrupt, healthy_books

START = SagaEvent(kind=EventKind.STARTED, at="2026-12-04T00:00:00+00:00")


async def operate(path: Path, request: OperationRequest) -> None:
    """Through the account service's own handler, as a hand-made API call would."""
    store = SqliteAccountStore(path)
    try:
        await store.transaction(lambda tx: accounts.perform(tx, request))
    finally:
        await store.close()


async def debit(path: Path, tx_id: str, account: str = "a", amount: int = 100) -> None:
    await operate(path, OperationRequest(Operation.DEBIT, tx_id, account, amount))


async def saga(
    path: Path,
    saga_id: str,
    status: str,
    *,
    at: str = START.at,
    definition: str = "transfer",
    **params: Any,
) -> None:
    log = SqliteSagaLog(path)
    try:
        await log.create(
            saga_id=saga_id,
            definition=definition,
            definition_version=1,
            definition_hash=TRANSFER_DEFINITION.shape_hash(),
            params=params,
            events=[SagaEvent(kind=EventKind.STARTED, at=at)],
            status=status,
        )
    finally:
        await log.close()


async def reconciled(path: Path, **kwargs: Any) -> AuditReport:
    store = SqliteAccountStore(path)
    log = SqliteSagaLog(path)
    try:
        return await reconcile(store, log, **kwargs)
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


async def test_every_cent_in_flight_is_summed_as_owned_or_orphaned(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    # Owned: one per status that is not settled, each amount distinct so a sum that keeps only
    # the last one, or counts one twice, shows.
    for tx_id, status, amount in [
        ("s1", "started", 40),
        ("s2", "compensating", 20),
        ("s3", "failed_needs_attention", 4),  # parked: waits for an operator
        ("s4", "resolved", 2),  # an operator's choice: theirs
    ]:
        await debit(db, tx_id, amount=amount)
        await saga(db, tx_id, status, source="a", target="b", amount=amount)
    # Orphaned: two hand-made debits, one of a single cent.
    await debit(db, "stray1", amount=30)
    await debit(db, "stray2", amount=1)
    # A corrupted zero-amount credit that no debit preceded moves nothing: not in flight, no
    # orphan (a transaction without a debit has debited 0, not some default amount).
    corrupt(
        db,
        "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
        " balance_after, created_at) VALUES ('b', 'z0', 'credit', 0, 100, 'x')",
    )
    report = await reconciled(db)
    assert report.violations == [
        "orphaned: stray1 holds 30 in flight and no saga owns it",
        "orphaned: stray2 holds 1 in flight and no saga owns it",
    ]
    assert (report.in_flight, report.owned_in_flight, report.orphaned_in_flight) == (97, 66, 31)
    assert report.orphans == ["stray1", "stray2"]
    assert (report.total_balance, report.total_opened) == (903, 1000)
    assert report.sagas_checked == 2  # t1 and t2; unsettled and resolved sagas are not checked


async def test_conservation_is_restated_with_the_money_in_flight(tmp_path: Path) -> None:
    # A running transfer's 40 is in flight, and b's balance gained 5 from nowhere: the book audit
    # counts both against conservation, the reconciliation only the 5.
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    await debit(db, "s1", amount=40)
    await saga(db, "s1", "started", source="a", target="b", amount=40)
    corrupt(db, "UPDATE accounts SET balance = balance + 5 WHERE account_id = 'b'")
    report = await reconciled(db)
    assert report.violations == [
        "balance_mismatch: b holds 105, ledger says 100",
        "not_conserved: balances sum to 965 with 40 in flight, 1000 was opened",
    ]
    assert (report.in_flight, report.owned_in_flight) == (40, 40)
    store = SqliteAccountStore(db)
    try:
        books_only = await store.read(audit)
    finally:
        await store.close()
    assert books_only.violations == [
        "balance_mismatch: b holds 105, ledger says 100",
        "not_conserved: balances sum to 965, 1000 was opened (40 in flight)",
    ]


TRANSFER = {"source": "a", "target": "b", "amount": 100}

#: kind -> (sagas: id, status, params; SQL corrupting healthy_books; the exact violations).
#: healthy_books' ledger: t1 debited a and credited b 100, t2 debited a 100 and compensated it.
SETTLED_VERDICTS: dict[str, tuple[list[tuple[str, str, dict[str, Any]]], list[str], list[str]]] = {
    "no_integer_amount": (
        [("t1", "completed", {**TRANSFER, "amount": "100"})],
        [],
        ["saga_mismatch: t1 no integer amount in the saga's parameters"],
    ),
    "debit_from_another_account": (
        [("t1", "completed", {**TRANSFER, "source": "c"})],
        [],
        ["saga_mismatch: t1 completed but no debit of 100 from c"],
    ),
    "debit_of_another_amount": (
        [("t1", "completed", {**TRANSFER, "amount": 60})],
        [],
        ["saga_mismatch: t1 completed but no debit of 60 from a"],
    ),
    "credit_to_another_account": (
        [("t1", "completed", {**TRANSFER, "target": "c"})],
        [],
        ["saga_mismatch: t1 completed but no credit of 100 to c"],
    ),
    "completed_and_compensated": (
        [("t1", "completed", TRANSFER)],
        [
            "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
            " balance_after, created_at) VALUES ('a', 't1', 'compensate_debit', 100, 1000, 'x')",
            "UPDATE accounts SET balance = 1000 WHERE account_id = 'a'",
        ],
        [
            "compensated_and_credited: t1",
            "money_created: t1 credited 100 against a net debit of 0",
            "saga_mismatch: t1 completed but its debit was compensated",
        ],
    ),
    "compensated_but_credited": (
        [("t1", "compensated", TRANSFER)],
        [],
        ["saga_mismatch: t1 compensated but credited"],
    ),
    # t2's compensation entry vanished (its record stays): the debit stands, in flight.
    "compensated_but_the_debit_stands": (
        [("t2", "compensated", TRANSFER)],
        [
            "DELETE FROM ledger_entries WHERE transaction_id = 't2'"
            " AND operation = 'compensate_debit'",
            "UPDATE accounts SET balance = 800 WHERE account_id = 'a'",
        ],
        [
            "settled_in_flight: t2 is compensated with 100 in flight",
            "saga_mismatch: t2 compensated but its debit stands",
        ],
    ),
    "compensated_with_nothing_recorded": (
        [("ghost", "compensated", TRANSFER)],
        [],
        ["saga_mismatch: ghost compensated but no compensation or tombstone recorded"],
    ),
    "rejected_but_debited_and_compensated": (
        [("t2", "rejected", TRANSFER)],
        [],
        ["saga_mismatch: t2 rejected but money moved"],
    ),
    # A debit the ledger holds under a saga the log says completed: in flight, and no credit.
    "completed_with_money_in_flight": (
        [("s4", "completed", {**TRANSFER, "amount": 25})],
        [
            "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
            " balance_after, created_at) VALUES ('a', 's4', 'debit', -25, 875, 'x')",
            "UPDATE accounts SET balance = 875 WHERE account_id = 'a'",
        ],
        [
            "settled_in_flight: s4 is completed with 25 in flight",
            "saga_mismatch: s4 completed but no credit of 25 to b",
        ],
    ),
    "rejected_with_money_in_flight": (
        [("s6", "rejected", {**TRANSFER, "amount": 10})],
        [
            "INSERT INTO ledger_entries (account_id, transaction_id, operation, delta,"
            " balance_after, created_at) VALUES ('a', 's6', 'debit', -10, 890, 'x')",
            "UPDATE accounts SET balance = 890 WHERE account_id = 'a'",
        ],
        [
            "settled_in_flight: s6 is rejected with 10 in flight",
            "saga_mismatch: s6 rejected but money moved",
        ],
    ),
}


@pytest.mark.parametrize("kind", SETTLED_VERDICTS)
async def test_each_settled_verdict_names_the_saga_and_its_figures(
    tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "books.db"
    await healthy_books(db)
    sagas, statements, violations = SETTLED_VERDICTS[kind]
    for saga_id, status, params in sagas:
        await saga(db, saga_id, status, **params)
    if statements:
        corrupt(db, *statements)
    report = await reconciled(db)
    assert report.violations == violations
    assert (report.sagas_checked, report.owned_in_flight, report.orphans) == (len(sagas), 0, [])


async def test_tombstones_clean_rejections_and_purged_records_reconcile(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await books_with_sagas(db)
    # t3: compensated before its debit ever applied: no ledger entry, only the tombstone record.
    await operate(db, OperationRequest(Operation.COMPENSATE_DEBIT, "t3", None, None))
    await saga(db, "t3", "compensated", **TRANSFER)
    await saga(db, "r1", "rejected", **TRANSFER)  # refused before anything moved
    report = await reconciled(db)
    assert (report.violations, report.sagas_checked) == ([], 4)
    # Retention drops t2's compensation record (its ledger entry stays) but keeps t3's
    # tombstone: a compensated debit is judged by its entries, the tombstone only where no
    # debit ever applied.
    store = SqliteAccountStore(db)
    try:
        await store.transaction(lambda tx: tx.purge_records(before="9999-01-01"))
        records = await store.read(
            lambda r: [r.get_record(Operation.COMPENSATE_DEBIT, t) for t in ("t2", "t3")]
        )
    finally:
        await store.close()
    assert records[0] is None
    assert records[1] is not None
    assert records[1].status == "nothing_to_compensate"
    report = await reconciled(db)
    assert (report.violations, report.sagas_checked) == ([], 4)


async def test_the_settled_sagas_read_back_are_capped_per_status(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    await healthy_books(db)
    await saga(db, "t1", "completed", at="2026-12-04T00:00:01+00:00", **TRANSFER)
    # Newer, and the ledger never saw it: the one a cap of 1 keeps.
    await saga(db, "x", "completed", at="2026-12-04T00:00:02+00:00", **TRANSFER)
    await saga(db, "t2", "compensated", **TRANSFER)
    # Not a transfer: its parameters mean nothing to the ledger check, so it is not checked.
    await saga(db, "other", "completed", definition="payout")
    expected = ["saga_mismatch: x completed but no debit of 100 from a"]
    capped = await reconciled(db, settled_limit=1)
    assert (capped.violations, capped.sagas_checked) == (expected, 2)
    full = await reconciled(db)
    assert (full.violations, full.sagas_checked) == (expected, 3)


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
