"""Retention of the participant kit's records (`participant_kit.retention`, `ParticipantService.
purge`), on SQLite and PostgreSQL: old actions and refusals go; the tombstones and every other
record that fences stay, and keep refusing a late action after the purge; the cutoff is strict
and recent records stay; a service purges its own operations only (the inventory and the orders
service share one table on PostgreSQL); their audits and the order saga's stay clean, and still
catch a forged row after a purge. `sagabank gc` over real files: tests/e2e/test_gc_participants.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, StrictInt

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.order import INVENTORY, ORDER, ORDERS
from repository_after.domain.saga import SagaStatus
from repository_after.participant_kit import Compensation, ParticipantService, Tx
from repository_after.service_layer import retention
from repository_after.service_layer.order_audit import audit_orders
from repository_after.services import inventory, orders
from repository_after.services.hosting import open_store
from tests.crash_matrix import open_accounts, orchestrator
from tests.fakes import Faults
from tests.unit.test_order_crash_matrix import OPENING, STOCK, Shop, books, lost, no_faults

OLD = "2000-01-01T00:00:00.000000+00:00"
HORIZON = retention.horizon(datetime.now(UTC), retention_days=30)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A directory (SQLite: one file per service) or one PostgreSQL / MariaDB database for all."""
    if request.param != "sqlite":
        return str(request.getfixturevalue(f"{request.param}_url"))
    return tmp_path


def place(database: Path | str, name: str) -> Path | str:
    return database / f"{name}.db" if isinstance(database, Path) else database


@pytest.fixture
async def stock(database: Path | str) -> AsyncIterator[ParticipantService]:
    service = inventory.open_inventory(place(database, "inventory"))
    try:
        await service.store.transaction(partial(inventory.open_stock, sku="apple", qty=10))
        yield service
    finally:
        await service.store.close()


async def call(
    service: ParticipantService, operation: str, key: str, body: dict[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    answer = await service.perform(operation, key, service.parse(operation, body))
    return answer.status_code, answer.json()


async def age(service: ParticipantService, created_at: str, keys: Sequence[str] = ()) -> None:
    """Set the `created_at` of the service's records (of `keys` only, when given)."""
    ops = tuple(service.operations)
    where = f"operation IN ({', '.join('?' for _ in ops)})"
    if keys:
        where += f" AND key IN ({', '.join('?' for _ in keys)})"
    sql = f"UPDATE participant_records SET created_at = ? WHERE {where}"
    await service.store.transaction(lambda tx: tx.execute(sql, (created_at, *ops, *keys)))


async def records(service: ParticipantService) -> set[tuple[str, str, int]]:
    ops = tuple(service.operations)
    sql = (
        "SELECT operation, key, status_code FROM participant_records"
        f" WHERE operation IN ({', '.join('?' for _ in ops)})"
    )
    rows = await service.store.read(lambda tx: tx.execute(sql, ops))
    return {(str(op), str(key), int(status)) for op, key, status in rows}


def reserve(qty: int) -> dict[str, Any]:
    return {"lines": [{"sku": "apple", "qty": qty}]}


async def test_old_actions_and_refusals_go_and_every_fence_stays(
    stock: ParticipantService,
) -> None:
    assert (await call(stock, "reserve", "k-a", reserve(1)))[0] == 200  # applied: goes
    assert (await call(stock, "reserve", "k-b", reserve(99)))[0] == 409  # refused: goes
    tombstone = await call(stock, "release", "k-c", None)
    assert tombstone == (
        200,
        {"operation": "release", "transaction_id": "k-c"} | {"status": "nothing_to_compensate"},
    )
    await call(stock, "reserve", "k-d", reserve(2))
    assert (await call(stock, "release", "k-d", None))[1]["status"] == "released"  # a fence
    await call(stock, "reserve", "k-e", reserve(3))
    assert (await call(stock, "sell", "k-e:sell", {"reservation_id": "k-e"}))[0] == 200
    # a compensation refused (the reservation was sold) undid nothing: it fences nothing, goes
    assert (await call(stock, "release", "k-e", None))[1]["error"] == "reservation_sold"
    await age(stock, OLD)

    assert await stock.purge(before=HORIZON) == 6
    assert await records(stock) == {("release", "k-c", 200), ("release", "k-d", 200)}
    audited = await stock.store.read(inventory.audit)
    assert audited.ok, audited.violations
    assert audited.reservations == {"reserved": 1, "released": 1, "sold": 1}
    before = await stock.store.read(inventory.list_stock)

    # the tombstone and the applied release still refuse a late reserve, which changes nothing
    for key in ("k-c", "k-d"):
        late = await call(stock, "reserve", key, reserve(1))
        assert (late[0], late[1]["error"]) == (409, "transaction_compensated")
    assert await stock.store.read(inventory.list_stock) == before
    assert await records(stock) == {("release", "k-c", 200), ("release", "k-d", 200)}
    assert await stock.purge(before=HORIZON) == 0  # what stays, stays


async def test_the_cutoff_is_strict_and_recent_records_stay(stock: ParticipantService) -> None:
    for key in ("at", "older", "recent"):
        await call(stock, "reserve", key, reserve(1))
    cutoff = "2020-06-01T00:00:00.000000+00:00"
    await age(stock, cutoff, ["at"])
    await age(stock, "2020-05-31T23:59:59.999999+00:00", ["older"])
    assert await stock.purge(before=cutoff) == 1
    assert {key for _, key, _ in await records(stock)} == {"at", "recent"}
    assert await stock.purge(before=HORIZON) == 1  # `at` is older than the horizon too
    assert {key for _, key, _ in await records(stock)} == {"recent"}
    assert (await stock.store.read(inventory.audit)).ok


class PutIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    n: StrictInt


def put(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    tx.execute("INSERT INTO notes (key, n) VALUES (?, ?)", (key, body["n"]))
    return {"status": "put", "n": body["n"]}


def take(tx: Tx, key: str, answer: dict[str, Any]) -> dict[str, Any]:
    tx.execute("DELETE FROM notes WHERE key = ?", (key,))
    return {"status": "taken", "n": answer["n"]}


async def test_settlements_stay_and_a_voided_action_stays_refused(
    database: Path | str,
) -> None:
    store = open_store(
        place(database, "notes"),
        schema=("CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, n BIGINT NOT NULL)",),
        name="notes",
    )
    notes = ParticipantService("notes", store)
    notes.action("put", PutIn, put, compensation=Compensation("take", take), settlement="void")
    try:
        assert (await call(notes, "void", "v-1", None))[1]["status"] == "voided"
        await call(notes, "put", "v-2", {"n": 2})
        assert (await call(notes, "void", "v-2", None))[1]["status"] == "already_applied"
        await call(notes, "put", "v-3", {"n": 3})
        await age(notes, OLD)
        assert await notes.purge(before=HORIZON) == 2  # the two puts
        assert await records(notes) == {("void", "v-1", 200), ("void", "v-2", 200)}
        late = await call(notes, "put", "v-1", {"n": 1})
        assert (late[0], late[1]["error"]) == (409, "transaction_voided")
        kept = await notes.store.read(lambda tx: tx.execute("SELECT key FROM notes"))
        assert sorted(kept) == [("v-2",), ("v-3",)]
    finally:
        await store.close()


async def test_a_service_purges_its_own_operations_only(
    stock: ParticipantService, database: Path | str
) -> None:
    await call(stock, "reserve", "r-1", reserve(1))
    # another service's record in the same table (PostgreSQL's default), or a foreign one here
    foreign = (
        "INSERT INTO participant_records (operation, key, request, status_code, body, applied,"
        " created_at) VALUES ('create', 'c-1', 'null', 200, '{\"status\":\"created\"}', 1, ?)"
    )
    await stock.store.transaction(lambda tx: tx.execute(foreign, (OLD,)))
    await age(stock, OLD)
    assert await stock.purge(before=HORIZON) == 1
    left = await stock.store.read(
        lambda tx: tx.execute("SELECT operation, key FROM participant_records")
    )
    assert left == [("create", "c-1")]


@pytest.mark.parametrize(
    ("forgery", "found"),
    [
        # a reservation nobody reserved: one more row without a record than were purged
        (
            "INSERT INTO reservations (reservation_id, state) VALUES ('forged', 'reserved')",
            "2 row(s) without an applied reserve recorded, but 1 applied reserve record(s)",
        ),
        # the totals themselves forged
        (
            "UPDATE participant_retention SET purged_applied = 5 WHERE operation = 'sell'",
            "1 row(s) without an applied sell recorded, but 5 applied sell record(s)",
        ),
        # a fence deleted: the released reservation has no release, and none was purged
        (
            "DELETE FROM participant_records WHERE operation = 'release'",
            "reservation 'k-2' is released but was released 0 and sold 0 times",
        ),
    ],
    ids=["a reservation nobody reserved", "forged totals", "a fence deleted"],
)
async def test_the_audit_still_finds_a_forged_row_after_a_purge(
    stock: ParticipantService, forgery: str, found: str
) -> None:
    await call(stock, "reserve", "k-1", reserve(1))
    await call(stock, "sell", "k-1:sell", {"reservation_id": "k-1"})
    await call(stock, "reserve", "k-2", reserve(1))
    await call(stock, "release", "k-2", None)
    await age(stock, OLD, ["k-1", "k-1:sell"])
    assert await stock.purge(before=HORIZON) == 2
    assert (await stock.store.read(inventory.audit)).ok
    await stock.store.transaction(lambda tx: tx.execute(forgery))
    report = await stock.store.read(inventory.audit)
    assert any(found in v for v in report.violations), report.violations


#: One order saga per scenario, on one shop: every kind of record the two services write.
SCENARIOS: dict[str, tuple[Faults, dict[str, int], SagaStatus]] = {
    "done": (no_faults, {"apple": 1}, SagaStatus.COMPLETED),
    "reserve lost before": (lost("reserve", "before"), {"apple": 1}, SagaStatus.COMPENSATED),
    "credit lost before": (lost("credit", "before"), {"pear": 1}, SagaStatus.COMPENSATED),
    "out of stock": (no_faults, {"pear": 99}, SagaStatus.COMPENSATED),
    "sell lost after": (lost("sell", "after", once=True), {"apple": 1}, SagaStatus.COMPLETED),
}


@pytest.fixture
async def shop(database: Path | str) -> AsyncIterator[Shop]:
    money = await open_accounts(OPENING)
    stock = inventory.open_inventory(place(database, "inventory"))
    sales = orders.open_orders(place(database, "orders"))
    try:
        for sku, qty in STOCK.items():
            await stock.store.transaction(partial(inventory.open_stock, sku=sku, qty=qty))
        yield Shop(money, {INVENTORY: stock, ORDERS: sales})
    finally:
        await stock.store.close()
        await sales.store.close()


async def test_the_order_audit_stays_clean_after_a_purge(shop: Shop) -> None:
    stock, sales = shop.services[INVENTORY], shop.services[ORDERS]
    log = InMemorySagaLog()
    for n, (name, (faults, lines, outcome)) in enumerate(SCENARIOS.items()):
        params = {
            "order_id": f"o-{n}",
            "customer": "customer",
            "merchant": "merchant",
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines.items()],
            "total": 100,
        }
        _, state = await orchestrator(log, shop.participant(faults)).run(
            ORDER.name, params, saga_id=f"s-{n}"
        )
        assert state.status == outcome, name
    statuses = {f"s-{n}": s[2].value for n, s in enumerate(SCENARIOS.values())}
    clean = replace(await books(shop, ""), sagas=statuses)
    assert audit_orders(clean) == []
    written = await records(stock) | await records(sales)
    assert ("release", "s-1:reserve", 200) in written  # the tombstone: reserve never arrived
    assert ("reserve", "s-3:reserve", 409) in written  # out of stock, a recorded refusal

    for service in (stock, sales):
        await age(service, OLD)
    purged = [await service.purge(before=HORIZON) for service in (stock, sales)]
    assert min(purged) > 0
    # only fences are left: the tombstone and the applied compensations
    left = await records(stock) | await records(sales)
    assert left == {r for r in written if r[0] in ("release", "cancel") and r[2] == 200}
    after = replace(await books(shop, ""), sagas=statuses)
    assert after.inventory_audit["ok"], after.inventory_audit
    assert after.orders_audit["ok"], after.orders_audit
    assert audit_orders(after) == []
    assert (after.orders, after.stock, after.reservations) == (
        clean.orders,
        clean.stock,
        clean.reservations,
    )

    # the reservation whose reserve never arrived stays fenced: a late reserve changes nothing
    late = await call(stock, "reserve", "s-1:reserve", reserve(1))
    assert (late[0], late[1]["error"]) == (409, "transaction_compensated")
    assert await stock.store.read(inventory.list_stock) == clean.stock


async def test_a_refused_record_goes_but_an_order_stays_refused_for_its_id(
    database: Path | str,
) -> None:
    sales = orders.open_orders(place(database, "orders"))
    order = {
        "order_id": "o-1",
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": "apple", "qty": 1}],
        "total": 10,
    }
    try:
        assert (await call(sales, "create", "s-1:create", order))[0] == 200
        assert (await call(sales, "create", "s-2:create", order))[1]["error"] == "order_exists"
        await age(sales, OLD)
        assert await sales.purge(before=HORIZON) == 2
        assert (await sales.store.read(orders.audit)).ok
        # decided afresh after the horizon: the business rule still refuses the taken id
        again = await call(sales, "create", "s-2:create", order)
        assert (again[0], again[1]["error"]) == (409, "order_exists")
    finally:
        await sales.store.close()
