"""Reduced chaos runs of the order saga: every fault family on real processes, and the books,
the stock and the orders must stay exact.

Each seed POSTs orders to `/sagas/order` through the fault proxy, which stands in front of the
account service and of the inventory and orders services it hosts, while the orchestrator and
the account service's process are SIGKILLed at seeded points. The report must be clean (money
conserved, no negative balance, every saga terminal, a clean account audit and order audit,
every saga matching the three services' records) and every family of the order saga must have
been injected, delays and duplicates on every service, or the run proved nothing. The tests then
read the four databases themselves (`tests/chaos/order_books.py`, plain SQL), so a tool whose
checks always came back clean could not turn a product that sells stock twice green.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagabank_tools.chaos.runner import ChaosConfig, run
from sagabank_tools.chaos.schedule import ORDER_FAMILIES, Family
from tests.chaos import order_books

# As test_chaos_run.py: the run's own deadlines, not this backstop, should name a stuck run.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

ORDERS = 60


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_an_order_chaos_run_with_every_fault_family_keeps_money_stock_and_orders(
    seed: int, tmp_path: Path
) -> None:
    config = ChaosConfig(seed=seed, sagas=ORDERS, saga="order", workdir=tmp_path, settle_timeout=60)
    outcome = await run(config)
    report = outcome.report

    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == ORDERS
    assert report.outcomes.get("completed", 0) > 0
    assert report.money_after == report.money_before
    assert {f.value for f in ORDER_FAMILIES} <= {f for f, n in report.faults.items() if n > 0}
    # The plan's refusals happened: some orders out of stock, some unaffordable.
    assert {"out_of_stock", "insufficient_funds"} <= report.refusals.keys()
    assert report.stock["sold"] > 0
    assert report.stock["reserved"] == 0
    # Delays and duplicates reached every service behind the proxy, and the before/after
    # families only their one action each.
    for family in (Family.DELAY, Family.DUPLICATE):
        hit = {op.partition("/")[0] for f, op in outcome.proxy.targets if f is family}
        assert {"inventory", "orders"} <= hit, (family, hit)
        assert hit - {"inventory", "orders"}, (family, "no account operation")
    action_of = {
        Family.CREDIT_BEFORE: "credit",
        Family.CREDIT_AFTER: "credit",
        Family.RESERVE_BEFORE: "inventory/reserve",
        Family.RESERVE_AFTER: "inventory/reserve",
    }
    injected = {(f, op) for f, op in outcome.proxy.targets if f in action_of}
    assert injected == set(action_of.items())
    assert report.late_deliveries, "no delayed request reached the services"
    assert report.batched_operations > 0, "no batch went through the faults"
    assert report.strangers_refused, "the run was made without the service token on"
    assert order_books.problems(tmp_path, orders=ORDERS) == [], report.replay_command()
