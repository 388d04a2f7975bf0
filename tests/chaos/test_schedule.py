"""The fault schedule and the plans are pure functions of the seed: same seed, same faults, kill
points, transfers, orders and stock."""

from __future__ import annotations

from collections import Counter

import pytest

from sagabank_tools.chaos.load import ACCOUNTS, plan
from sagabank_tools.chaos.order_plan import LUXURY, SKUS, plan_orders
from sagabank_tools.chaos.proxy import OPERATIONS as EVERY_OPERATION
from sagabank_tools.chaos.schedule import (
    CLASSES_FAMILIES,
    ORDER_FAMILIES,
    TRANSFER_FAMILIES,
    Family,
    Rates,
    Schedule,
    parse_families,
)

OPERATIONS = ("debit", "credit", "compensate_debit", "void_credit")
CLASSES_OPERATIONS = ("classes/enrol", "classes/void_enrol", "pupils/assign", "pupils/unassign")
ORDER_OPERATIONS = tuple(sorted(EVERY_OPERATION - {*OPERATIONS, *CLASSES_OPERATIONS}))


def fingerprint(schedule: Schedule, operations: tuple[str, ...] = OPERATIONS) -> list[object]:
    faults = [
        schedule.proxy_fault(f"chaos-{i:06d}", op, n)
        for i in range(300)
        for op in operations
        for n in (1, 2, 3)
    ]
    kills = [schedule.kill_points(f, 2000) for f in schedule.families]
    return [*faults, *kills]


@pytest.mark.parametrize(
    ("families", "operations"),
    [(TRANSFER_FAMILIES, OPERATIONS), (ORDER_FAMILIES, (*OPERATIONS, *ORDER_OPERATIONS))],
    ids=["transfer", "order"],
)
def test_the_same_seed_gives_the_same_schedule_and_another_seed_another(
    families: tuple[Family, ...], operations: tuple[str, ...]
) -> None:
    seven = fingerprint(Schedule(7, families), operations)
    assert seven == fingerprint(Schedule(7, families), operations)
    assert seven != fingerprint(Schedule(8, families), operations)


def test_the_order_families_leave_the_transfer_operations_faults_as_they_were() -> None:
    """The reserve families hit `inventory/reserve` alone: with the order's families on, the
    transfer's operations meet the very faults they meet under the transfer's families."""
    transfer = fingerprint(Schedule(7, TRANSFER_FAMILIES))
    faults = len(transfer) - len(TRANSFER_FAMILIES)
    assert fingerprint(Schedule(7, ORDER_FAMILIES))[:faults] == transfer[:faults]


def test_the_proxy_faults_every_operation_of_the_order_saga_at_its_path() -> None:
    assert ORDER_OPERATIONS == (
        "inventory/release",
        "inventory/reserve",
        "inventory/sell",
        "orders/cancel",
        "orders/confirm",
        "orders/create",
    )


def test_the_proxy_faults_every_operation_of_the_classes_saga_at_its_path() -> None:
    assert {op for op in EVERY_OPERATION if op.startswith(("pupils/", "classes/"))} == set(
        CLASSES_OPERATIONS
    )


def test_the_classes_families_hit_their_own_actions_and_leave_the_others_as_they_were() -> None:
    """The assign and enrol families hit `pupils/assign` and `classes/enrol` alone: the transfer's
    and the order's operations meet the very faults they met before, and a family of the
    classes saga is no family of the other two."""
    every = (*OPERATIONS, *ORDER_OPERATIONS)
    faults = 300 * 3 * len(every)  # `fingerprint`'s proxy faults, before its kill points
    with_classes = Schedule(7, (*ORDER_FAMILIES, *CLASSES_FAMILIES[:4]))
    before = fingerprint(Schedule(7, ORDER_FAMILIES), every)[:faults]
    assert fingerprint(with_classes, every)[:faults] == before
    hit = {
        (fault.family, op)
        for op in CLASSES_OPERATIONS
        for i in range(300)
        if (fault := Schedule(7, CLASSES_FAMILIES).proxy_fault(f"c-{i}", op, 1)).family
        and fault.family not in (Family.DELAY, Family.DUPLICATE)
    }
    assert {op for _, op in hit} == {"pupils/assign", "classes/enrol"}
    with pytest.raises(ValueError, match="not a order family"):
        parse_families("enrol-after", "order")


def test_a_fault_depends_on_the_delivery_not_on_the_order_of_questions() -> None:
    schedule = Schedule(3, TRANSFER_FAMILIES)
    keys = [(f"tx-{i}", op, n) for i in range(50) for op in OPERATIONS for n in (1, 2)]
    forward = {k: schedule.proxy_fault(*k) for k in keys}
    backward = {k: schedule.proxy_fault(*k) for k in reversed(keys)}
    assert forward == backward


def test_the_transfer_plan_replays_from_the_seed() -> None:
    assert plan(5, 100) == plan(5, 100)
    assert plan(5, 100) != plan(6, 100)
    assert all(t.source != t.target for t in plan(5, 100))


def test_the_order_plan_and_its_stock_replay_from_the_seed() -> None:
    assert plan_orders(5, 100) == plan_orders(5, 100)
    assert plan_orders(5, 100) != plan_orders(6, 100)
    planned = plan_orders(5, 100)
    asked = Counter[str]()
    for order in planned.orders:
        assert order.customer != order.merchant
        assert {order.customer, order.merchant} <= set(ACCOUNTS)
        skus = [sku for sku, _ in order.lines]
        assert len(set(skus)) == len(skus)
        assert order.total > 0
        asked.update(dict(order.lines))
    assert len({o.transaction_id for o in planned.orders}) == 100
    assert len({o.order_id for o in planned.orders}) == 100
    # Two SKUs are scarce (a third of what is asked), the rest opened with what is asked; the
    # luxury orders cost more than all the demo accounts hold, so they are refused for funds.
    assert set(planned.stock) == {*SKUS, LUXURY}
    short = {sku for sku, qty in planned.stock.items() if qty < asked[sku]}
    assert len(short) == 2
    assert LUXURY not in short
    assert all(planned.stock[sku] == asked[sku] for sku in planned.stock.keys() - short)
    luxury = [o for o in planned.orders if LUXURY in dict(o.lines)]
    assert len(luxury) == 5
    assert all(o.total > len(ACCOUNTS) * 100_000 for o in luxury)


def test_before_and_after_faults_only_hit_their_action_and_every_family_occurs() -> None:
    schedule = Schedule(11, ORDER_FAMILIES)
    seen: dict[str, set[Family]] = {op: set() for op in EVERY_OPERATION}
    for i in range(500):
        for op in EVERY_OPERATION:
            fault = schedule.proxy_fault(f"tx-{i}", op, 1)
            if fault.family is not None:
                seen[op].add(fault.family)
    anywhere = {Family.DELAY, Family.DUPLICATE}
    assert seen.pop("credit") == {Family.CREDIT_BEFORE, Family.CREDIT_AFTER, *anywhere}
    assert seen.pop("inventory/reserve") == {
        Family.RESERVE_BEFORE,
        Family.RESERVE_AFTER,
        *anywhere,
    }
    assert all(families == anywhere for families in seen.values()), seen


def test_a_delay_exceeds_the_attempt_timeout_range() -> None:
    rates = Rates(delay=1.0, delay_range=(0.4, 2.5))
    delays = [
        Schedule(1, (Family.DELAY,), rates).proxy_fault(f"t{i}", "debit", 1) for i in range(200)
    ]
    assert all(f.family is Family.DELAY and 0.4 <= f.delay <= 2.5 for f in delays)


def test_families_that_are_off_are_never_scheduled() -> None:
    schedule = Schedule(2, (Family.DUPLICATE,))
    families = {schedule.proxy_fault(f"t{i}", "credit", 1).family for i in range(500)}
    assert families == {None, Family.DUPLICATE}
    assert schedule.kill_points(Family.KILL_ORCHESTRATOR, 1000) == ()


def test_kill_points_are_within_the_run_and_at_least_one_per_family() -> None:
    schedule = Schedule(4, TRANSFER_FAMILIES)
    for family in (Family.KILL_ORCHESTRATOR, Family.KILL_ACCOUNTS):
        points = schedule.kill_points(family, 50)
        assert len(points) >= 1
        assert all(1 <= p < 50 for p in points)
    assert len(schedule.kill_points(Family.KILL_ORCHESTRATOR, 2000)) == 12


def test_parse_families_accepts_a_list_and_refuses_unknown_names() -> None:
    assert parse_families("delay, credit-before") == (Family.CREDIT_BEFORE, Family.DELAY)
    with pytest.raises(ValueError, match="unknown fault family: nope"):
        parse_families("delay,nope")
    with pytest.raises(ValueError, match="no fault family"):
        parse_families(" , ")


def test_each_saga_takes_its_own_families_only() -> None:
    assert parse_families("reserve-after,credit-before", "order") == (
        Family.CREDIT_BEFORE,
        Family.RESERVE_AFTER,
    )
    with pytest.raises(ValueError, match="not a transfer family: reserve-before"):
        parse_families("delay,reserve-before")
