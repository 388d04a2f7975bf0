"""The crash matrix over the ORDER saga (create -> reserve -> charge -> pay (pivot, settled by
`void_credit`) -> sell -> confirm), in process.

The participants are the real ones reached without HTTP (`tests.fakes.LocalParticipant`): the
account use cases on an in-memory account store, and the inventory and orders services (the
participant kit's `perform`) each on its own in-memory SQLite store, which outlive the
orchestrator that "dies". For each fault scenario the first orchestrator is killed before and
after each remote call and before each saga-log write (`tests.crash_matrix`); a fresh one
recovers and the client re-submits. Then, at every point:

- the saga is terminal (no scenario here parks: every unknown outcome is retried, compensated
  or settled by the rules);
- the account service's audit, the inventory's, the orders' and the order saga's invariants
  (`service_layer.order_audit`) are clean;
- the outcome matches the books: a completed order is confirmed, its stock sold and its total
  moved from the customer to the merchant; a compensated one is cancelled (or was refused at
  create), its stock all available again and no money moved;
- every side effect was applied at most once, and the ones its outcome needs exactly once.

The checks count what each service applied per OPERATION, never per key, so they hold whatever
key scheme the order's steps use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.accounts import LedgerEntry
from repository_after.domain.order import INVENTORY, ORDER, ORDERS
from repository_after.domain.saga import SagaStatus
from repository_after.participant_kit import ParticipantService, Tx
from repository_after.service_layer.audit import audit
from repository_after.service_layer.order_audit import OrderBooks, audit_orders, saga_of_order
from repository_after.services import inventory, orders
from tests.crash_matrix import (
    Shape,
    call_points,
    crash_then_recover,
    open_accounts,
    orchestrator,
    write_points,
)
from tests.fakes import CrashingLog, Faults, LocalParticipant

OPENING = {"customer": 1000, "merchant": 1000}
STOCK = {"apple": 5, "pear": 3}
ORDERED = {"apple": 2, "pear": 1}
TOTAL = 300


def lost(operation: str, where: str, *, once: bool = False) -> Faults:
    return lambda op, n: where if op == operation and (n == 1 or not once) else None


class Scenario(NamedTuple):
    faults: Faults
    #: the outcome it must end in, crash or no crash (none of these parks)
    outcome: SagaStatus
    total: int = TOTAL
    lines: dict[str, int] = ORDERED


def no_faults(_operation: str, _nth: int) -> None:
    return None


DONE, UNDONE = SagaStatus.COMPLETED, SagaStatus.COMPENSATED
SCENARIOS = {
    "no faults": Scenario(no_faults, DONE),
    # void_credit answers `voided`: the charge, the reservation and the order are undone
    "credit lost before, always": Scenario(lost("credit", "before"), UNDONE),
    # void_credit answers `already_applied`: past the pivot, sell and confirm
    "credit lost after, always": Scenario(lost("credit", "after"), DONE),
    "credit lost after, once": Scenario(lost("credit", "after", once=True), DONE),
    # a compensatable step's unknown outcome is compensated: release finds the reservation
    "reserve lost after, always": Scenario(lost("reserve", "after"), UNDONE),
    "out of stock at reserve": Scenario(no_faults, UNDONE, lines={"apple": 2, "pear": 4}),
    "insufficient funds at charge": Scenario(no_faults, UNDONE, total=5000),
    # a retriable step's retry under its key replays the sale
    "sell lost after, once": Scenario(lost("sell", "after", once=True), DONE),
}
#: (remote calls, saga-log writes) of each scenario without a crash (see tests.crash_matrix)
SHAPES: dict[str, Shape] = {
    "no faults": (6, 7),
    "credit lost before, always": (9, 10),
    "credit lost after, always": (8, 9),
    "credit lost after, once": (7, 8),
    "reserve lost after, always": (5, 6),
    "out of stock at reserve": (3, 4),
    "insufficient funds at charge": (5, 6),
    "sell lost after, once": (7, 8),
}


@dataclass
class Shop:
    """The three participants' stores, which outlive any orchestrator."""

    money: InMemoryAccountStore
    services: dict[str, ParticipantService]

    def participant(
        self, faults: Faults, at: int | None = None, after: bool = False
    ) -> LocalParticipant:
        return LocalParticipant(
            self.money, faults, crash_at_call=at, crash_after_apply=after, services=self.services
        )


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    money = await open_accounts(OPENING)
    stock, sales = inventory.open_inventory(":memory:"), orders.open_orders(":memory:")
    try:
        for sku, qty in STOCK.items():
            await stock.store.transaction(partial(inventory.open_stock, sku=sku, qty=qty))
        yield Shop(money, {INVENTORY: stock, ORDERS: sales})
    finally:
        await stock.store.close()
        await sales.store.close()


def params(scenario: str) -> dict[str, Any]:
    _, _, total, lines = SCENARIOS[scenario]
    return {
        "order_id": "o-1",
        "customer": "customer",
        "merchant": "merchant",
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines.items()],
        "total": total,
    }


def applied(tx: Tx) -> Counter[str]:
    rows = tx.execute("SELECT operation FROM participant_records WHERE applied = 1")
    return Counter(str(operation) for (operation,) in rows)


def reservations(tx: Tx) -> dict[str, Any]:
    ids = [str(r) for (r,) in tx.execute("SELECT reservation_id FROM reservations")]
    return {r: inventory.reservation(tx, r) for r in ids}


async def ledger(money: InMemoryAccountStore) -> list[LedgerEntry]:
    return await money.read(lambda r: [e for n in OPENING for e in r.list_entries(n, limit=1000)])


async def books(shop: Shop, status: str) -> OrderBooks:
    money, stock, sales = shop.money, shop.services[INVENTORY], shop.services[ORDERS]
    entries = [
        {"entry_id": e.entry_id, "transaction_id": e.transaction_id}
        | {"operation": e.operation.value, "delta": e.delta}
        for e in await ledger(money)
    ]
    listed = await sales.store.read(lambda tx: orders.list_orders(tx, limit=1000, after=None))
    return OrderBooks(
        account_audit=(await money.read(audit)).as_dict(),
        entries=entries,
        stock=await stock.store.read(inventory.list_stock),
        inventory_audit=(await stock.store.read(inventory.audit)).as_dict(),
        reservations=await stock.store.read(reservations),
        orders=listed,
        orders_audit=(await sales.store.read(orders.audit)).as_dict(),
        sagas={saga_of_order(o): status for o in listed},
    )


async def assert_books_balance(shop: Shop, scenario: str, status: str) -> None:
    assert status == SCENARIOS[scenario].outcome
    assert audit_orders(await books(shop, status)) == []
    money, stock, sales = shop.money, shop.services[INVENTORY], shop.services[ORDERS]
    balances = {a.account_id: a.balance for a in await money.read(lambda r: r.list_accounts())}
    moved = Counter(e.operation.value for e in await ledger(money))
    done = await stock.store.read(applied) + await sales.store.read(applied)
    assert max(done.values(), default=0) <= 1, done
    assert max(moved.values(), default=0) <= 1, moved
    rows = {row["sku"]: row for row in await stock.store.read(inventory.list_stock)}
    listed = await sales.store.read(lambda tx: orders.list_orders(tx, limit=1000, after=None))
    if status == SagaStatus.COMPLETED:
        total = SCENARIOS[scenario].total
        assert balances == {"customer": 1000 - total, "merchant": 1000 + total}
        assert +done == Counter(create=1, reserve=1, sell=1, confirm=1)
        assert +moved == Counter(debit=1, credit=1)
        assert [o["state"] for o in listed] == ["confirmed"]
        assert {s: r["sold"] for s, r in rows.items()} == ORDERED
    else:
        assert balances == OPENING
        assert done["cancel"] == done["create"] == 1
        assert (done["release"], done["sell"], done["confirm"]) == (done["reserve"], 0, 0)
        assert (moved["debit"], moved["credit"]) == (moved["compensate_debit"], 0)
        assert [o["state"] for o in listed] == ["cancelled"]
        assert {s: r["available"] for s, r in rows.items()} == STOCK


async def crash_recover_and_check(shop: Shop, scenario: str, **point: Any) -> None:
    status, crashed = await crash_then_recover(
        lambda at, after: shop.participant(SCENARIOS[scenario].faults, at, after),
        ORDER.name,
        params(scenario),
        saga_id="s-1",
        **point,
    )
    assert crashed
    await assert_books_balance(shop, scenario, status)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_without_a_crash_every_order_scenario_settles(shop: Shop, scenario: str) -> None:
    log = CrashingLog(InMemorySagaLog())
    participant = shop.participant(SCENARIOS[scenario].faults)
    _, state = await orchestrator(log, participant).run(ORDER.name, params(scenario), saga_id="s-1")
    assert (len(participant.calls), log.writes) == SHAPES[scenario]
    await assert_books_balance(shop, scenario, state.status)


@pytest.mark.parametrize(("scenario", "call", "after_apply"), call_points(SHAPES))
async def test_an_order_crashed_at_any_remote_call_recovers_with_clean_books(
    shop: Shop, scenario: str, call: int, after_apply: bool
) -> None:
    await crash_recover_and_check(shop, scenario, call=call, after_apply=after_apply)


@pytest.mark.parametrize(("scenario", "write"), write_points(SHAPES))
async def test_an_order_crashed_before_any_log_write_recovers_with_clean_books(
    shop: Shop, scenario: str, write: int
) -> None:
    await crash_recover_and_check(shop, scenario, write=write)
