"""The bench's seeded plans, shared by every system it measures.

`scenarios` (sagabank and the naive design) and `cqrs_saga` (python-cqrs) load the same transfer
plan for the same seed, and `orders` and `cqrs_order` the same order plan, so their figures
compare like with like. The accounts are the account service's demo accounts
(`SAGABANK_DEMO_ACCOUNTS`, ten by default).

An order buys 1-3 distinct SKUs (1-3 of each) from a merchant, both among the demo accounts and
never the same; its total is the lines at each SKU's price. The order bench opens every account
with `ORDER_BALANCE` and every SKU with `STOCK`, more than any plan here spends or sells, so
neither a customer's funds nor the stock runs out: no outcome depends on which order comes first,
and the two systems face the same refusals (none) and the same injected faults.
"""

from __future__ import annotations

import random

from sagabank_tools.chaos.order_plan import PlannedOrder

ACCOUNTS = [f"acc-{i:02d}" for i in range(1, 11)]
#: SKU -> its unit price in minor units
PRICES = {f"sku-{i:02d}": 100 + 50 * i for i in range(1, 21)}
#: Each SKU's opening stock (`POST /inventory/stock`)
STOCK = 1_000_000
#: Each demo account's opening balance in the order bench (`SAGABANK_DEMO_BALANCE`)
ORDER_BALANCE = 10**10


def transfer_plan(n: int, seed: int) -> list[tuple[str, str, int]]:
    """n (source, target, amount) transfers between two distinct demo accounts."""
    rng = random.Random(seed)
    transfers: list[tuple[str, str, int]] = []
    for _ in range(n):
        source, target = rng.sample(ACCOUNTS, 2)
        transfers.append((source, target, rng.randint(1, 3_000)))
    return transfers


def order_plan(n: int, seed: int) -> list[PlannedOrder]:
    """n orders (order id `order-<i>`, saga id `bench-order-<i>`), each from a customer to a
    merchant, two distinct demo accounts; the chaos run's `PlannedOrder`, whose `body()` is the
    order saga's parameters."""
    rng = random.Random(seed)
    orders: list[PlannedOrder] = []
    for i in range(n):
        customer, merchant = rng.sample(ACCOUNTS, 2)
        skus = rng.sample(sorted(PRICES), rng.randint(1, 3))
        lines = tuple((sku, rng.randint(1, 3)) for sku in skus)
        total = sum(PRICES[sku] * qty for sku, qty in lines)
        orders.append(
            PlannedOrder(f"bench-order-{i}", f"order-{i}", customer, merchant, lines, total)
        )
    return orders
