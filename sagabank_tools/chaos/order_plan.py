"""The order plan of a chaos run: the stock to open and the orders, a pure function of the seed.

An order goes from a customer to a merchant (two distinct demo accounts acc-01…acc-10, which
open with 100,000 each) for 1-3 lines of distinct SKUs out of `SKUS`, 1-5 of each, at unit
prices of 500-9,000 drawn per SKU from the seed; its total is the sum of its lines, up to
135,000, so some orders are refused for insufficient funds. One order in `LUXURY_EVERY` also
buys a `LUXURY` item, priced above all the money there is: refused for insufficient funds
whatever the balances are by then, so that even a short run meets that refusal. The stock each
SKU opens with is part of the plan: what the plan's orders ask of it, but only a third of that
for two scarce SKUs (never the luxury one), so some orders are refused out of stock. Saga id
`chaos-<seed>-<n>` (as a transfer's), order id `o-<seed>-<n>`: both unique in a run.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from sagabank_tools.chaos.load import ACCOUNTS

SKUS = ("apple", "pear", "plum", "fig", "kiwi", "lime", "date", "quince")
SCARCE = 2  # SKUs opened with a third of what the plan asks of them
LUXURY = "yacht"
LUXURY_PRICE = 2_000_000  # more than the ten demo accounts hold together (10 x 100,000)
LUXURY_EVERY = 20


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    transaction_id: str
    order_id: str
    customer: str
    merchant: str
    lines: tuple[tuple[str, int], ...]  # (sku, qty), SKUs distinct
    total: int

    def body(self) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "customer": self.customer,
            "merchant": self.merchant,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in self.lines],
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class OrderPlan:
    stock: dict[str, int]  # sku -> the quantity it opens with
    orders: list[PlannedOrder]


def plan_orders(seed: int, orders: int) -> OrderPlan:
    rng = random.Random(f"order-plan:{seed}")
    prices = {sku: rng.randint(500, 9_000) for sku in SKUS} | {LUXURY: LUXURY_PRICE}
    luxury_at = rng.randrange(LUXURY_EVERY)
    planned = []
    for index in range(orders):
        customer, merchant = rng.sample(ACCOUNTS, 2)
        lines = tuple((sku, rng.randint(1, 5)) for sku in rng.sample(SKUS, rng.randint(1, 3)))
        if index % LUXURY_EVERY == luxury_at:
            lines += ((LUXURY, 1),)
        planned.append(
            PlannedOrder(
                transaction_id=f"chaos-{seed}-{index:06d}",
                order_id=f"o-{seed}-{index:06d}",
                customer=customer,
                merchant=merchant,
                lines=lines,
                total=sum(qty * prices[sku] for sku, qty in lines),
            )
        )
    asked = Counter[str]()
    for order in planned:
        asked.update(dict(order.lines))
    scarce = set(rng.sample(SKUS, SCARCE))
    stock = {
        sku: max(1, asked[sku] // 3 if sku in scarce else asked[sku]) for sku in (*SKUS, LUXURY)
    }
    return OrderPlan(stock, planned)
