"""The order demo's shop: its catalogue, its customers and merchants, and a seeded plan of orders.

Pure (no I/O): `plan_orders(seed, n, run_id)` is the same list for the same arguments. The
figures are chosen so that a run of 100 orders meets every outcome: most orders are paid, the
scarce SKUs (`lamp`, `bike`) run out (409 `out_of_stock`, the order cancelled), and the poorer
customers cannot pay for the dearer baskets (409 `insufficient_funds`, the reservation released
and the order cancelled). Prices and balances are integer minor units.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Product:
    sku: str
    price: int
    #: What the shelf holds at the start of every run (`restock` tops it up to this).
    shelf: int
    #: How often a basket picks it, relative to the others.
    weight: int


CATALOGUE = (
    Product("apple", 120, 60, 30),
    Product("pear", 95, 40, 25),
    Product("coffee", 850, 30, 20),
    Product("teapot", 3_400, 10, 12),
    Product("lamp", 12_900, 5, 8),
    Product("bike", 48_000, 2, 5),
)
PRICES = {p.sku: p.price for p in CATALOGUE}

#: Opened once (on an empty account service) with these balances; they spend down run by run.
CUSTOMERS = {
    "cust-01": 300_000,
    "cust-02": 200_000,
    "cust-03": 150_000,
    "cust-04": 100_000,
    "cust-05": 60_000,
    "cust-06": 30_000,
    "cust-07": 10_000,
    "cust-08": 3_000,
}
MERCHANTS = {"shop-01": 0, "shop-02": 0, "shop-03": 0}
MAX_LINES = 3
MAX_QTY = 3


@dataclass(frozen=True)
class PlannedOrder:
    saga_id: str
    order_id: str
    customer: str
    merchant: str
    lines: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(PRICES[sku] * qty for sku, qty in self.lines)

    def params(self) -> dict[str, Any]:
        """The order saga's parameters (`POST /sagas/order`'s body)."""
        return {
            "order_id": self.order_id,
            "customer": self.customer,
            "merchant": self.merchant,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in self.lines],
            "total": self.total,
        }


def _basket(rng: random.Random) -> tuple[tuple[str, int], ...]:
    wanted = rng.randint(1, MAX_LINES)
    skus: list[str] = []
    while len(skus) < wanted:
        sku = rng.choices(CATALOGUE, weights=[p.weight for p in CATALOGUE])[0].sku
        if sku not in skus:
            skus.append(sku)
    return tuple((sku, rng.randint(1, MAX_QTY)) for sku in skus)


def plan_orders(seed: int, n: int, run_id: str) -> list[PlannedOrder]:
    """`n` orders from random customers to random merchants; ids carry the seed and `run_id`,
    so a second run starts new orders."""
    rng = random.Random(seed)
    customers, merchants = sorted(CUSTOMERS), sorted(MERCHANTS)
    return [
        PlannedOrder(
            saga_id=f"order-{seed}-{run_id}-{i:04d}",
            order_id=f"o-{seed}-{run_id}-{i:04d}",
            customer=rng.choice(customers),
            merchant=rng.choice(merchants),
            lines=_basket(rng),
        )
        for i in range(n)
    ]
