"""The account service's configured faults in choreography (`choreography.account_faults`):
drawn once per delivery of a credit from the process's `/credit` injector, every point failing
the delivery before anything is decided, never more than `in_a_row` deliveries in a row for one
key (the wiring makes it one: `tests/integration/test_choreography_account_faults.py`); and
`accounts_decide` on a real SQLite file: a faulted delivery leaves nothing, even though the
group commit runs the faulted job twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.choreography.account_faults import AccountFaults
from repository_after.choreography.stores import (
    InjectedFault,
    SharedSqliteStore,
    accounts_decide,
)
from repository_after.participant_kit.storage import Tx
from repository_after.service_layer import accounts
from repository_after.service_layer.faults import FaultInjector, FaultMode, FaultPoint


class Delivery:
    """A stand-in for one delivery's `Tx` (the draw only keeps it as a weak key)."""


def delivery() -> Tx:
    return cast(Tx, Delivery())


def injector(rate: float, seed: int = 7, mode: FaultMode = FaultMode.BEFORE) -> FaultInjector:
    return FaultInjector(rate=rate, mode=mode, seed=seed)


def test_a_credit_is_faulted_at_most_in_a_row_deliveries_then_let_through() -> None:
    faults = AccountFaults(injector(1.0), in_a_row=3)
    drawn = [faults.draw(delivery(), "credit", "t-1:credit") for _ in range(4)]
    assert drawn == [FaultPoint.BEFORE] * 3 + [FaultPoint.NONE]
    # the streak ended with the delivery let through: a later one draws afresh
    assert faults.draw(delivery(), "credit", "t-1:credit") is FaultPoint.BEFORE
    assert faults.injector.counts.before == 4


def test_every_run_of_one_delivery_meets_its_one_draw() -> None:
    faults = AccountFaults(injector(0.5, seed=3), in_a_row=1_000)
    for n in range(50):
        tx = delivery()
        first = faults.draw(tx, "credit", f"t-{n}")
        assert [faults.draw(tx, "credit", f"t-{n}") for _ in range(3)] == [first] * 3
    assert 10 <= faults.injector.counts.before <= 40  # one draw per delivery, ~50 %


def test_a_restarted_process_cannot_fault_a_redelivered_credit_again() -> None:
    # The campaign's finding: every process draws the seed's sequence afresh and starts with no
    # streaks, so the first credit it meets was faulted by each generation in turn until its
    # delivery limit parked it. The broker's delivery count, which a restart keeps, decides.
    seed_whose_first_draw_faults = 1
    key = "chaos-4-000033:credit"
    for earlier in range(4):  # one process generation per delivery, each SIGKILLed
        faults = AccountFaults(injector(0.3, seed=seed_whose_first_draw_faults), in_a_row=1)
        point = faults.draw(delivery(), "credit", key, earlier)
        # the first delivery of the first process is faulted; the same first draw of each later
        # process meets a redelivery and lets it through
        assert point is (FaultPoint.BEFORE if earlier == 0 else FaultPoint.NONE)
        assert faults.injector.counts.before == (1 if earlier == 0 else 0)


def test_streaks_are_per_key() -> None:
    faults = AccountFaults(injector(1.0), in_a_row=1)
    assert faults.draw(delivery(), "credit", "a") is FaultPoint.BEFORE
    assert faults.draw(delivery(), "credit", "b") is FaultPoint.BEFORE
    assert faults.draw(delivery(), "credit", "a") is FaultPoint.NONE
    assert faults.draw(delivery(), "credit", "b") is FaultPoint.NONE


def test_none_in_a_row_never_faults_as_with_a_delivery_limit_of_zero() -> None:
    faults = AccountFaults(injector(1.0), in_a_row=0)
    assert faults.draw(delivery(), "credit", "a") is FaultPoint.NONE
    assert faults.injector.counts.before == 0


def test_only_the_configured_operation_draws() -> None:
    faults = AccountFaults(injector(1.0), in_a_row=5)
    for operation in ("debit", "compensate_debit", "void_credit"):
        assert faults.draw(delivery(), operation, "t-1") is FaultPoint.NONE
    assert faults.injector.counts.before == 0


def test_the_rate_and_the_seed_are_the_injectors() -> None:
    def run(seed: int) -> list[FaultPoint]:
        faults = AccountFaults(injector(0.3, seed=seed), in_a_row=5)
        return [faults.draw(delivery(), "credit", f"t-{n}") for n in range(400)]

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    assert 80 <= first.count(FaultPoint.BEFORE) <= 160  # 30 % of 400, generously
    no_faults = AccountFaults(injector(0.0), in_a_row=5)
    assert no_faults.draw(delivery(), "credit", "t") is FaultPoint.NONE


@pytest.fixture
async def shared(tmp_path: Path) -> SharedSqliteStore:
    store = SqliteAccountStore(tmp_path / "accounts.db")
    await store.transaction(
        lambda tx: accounts.open_account(tx, account_id="acc-01", initial_balance=100)
    )
    return SharedSqliteStore(store.database)


def _credit(faults: AccountFaults | None, runs: list[int]) -> Any:
    body = {"account_id": "acc-01", "amount": 5}

    def run(tx: Tx) -> Any:
        runs.append(1)
        return accounts_decide(tx, "credit", "t-1", body, faults=faults)

    return run


def _books(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        (operations,) = conn.execute("SELECT COUNT(*) FROM operations").fetchone()
        (balance,) = conn.execute("SELECT balance FROM accounts").fetchone()
        return operations, balance
    finally:
        conn.close()


@pytest.mark.parametrize("mode", list(FaultMode))
async def test_a_faulted_delivery_fails_before_anything_in_every_run(
    shared: SharedSqliteStore, tmp_path: Path, mode: FaultMode
) -> None:
    """`after` and `mixed` too: an answer lost after the commit has no meaning in one
    transaction, so every drawn point fails the delivery before the decision."""
    runs: list[int] = []
    faults = AccountFaults(injector(1.0, mode=mode), in_a_row=1)
    with pytest.raises(InjectedFault, match="before the credit of t-1"):
        await shared.transaction(_credit(faults, runs))
    assert len(runs) == 2  # the group commit ran the faulted job again, in a savepoint
    assert _books(tmp_path / "accounts.db") == (0, 100)
    # the next delivery: this key had its one fault, let through, applied once
    answer = await shared.transaction(_credit(faults, runs))
    assert answer.status_code == 200
    assert _books(tmp_path / "accounts.db") == (1, 105)
    await shared.db.close()


def test_a_tx_without_weak_references_still_draws_once_per_run() -> None:
    class Slotted:
        __slots__ = ()

    faults = AccountFaults(injector(1.0), in_a_row=1)
    tx = cast(Tx, Slotted())
    assert faults.draw(tx, "credit", "k") is FaultPoint.BEFORE
    assert faults.draw(tx, "credit", "k") is FaultPoint.NONE  # the cap still holds
