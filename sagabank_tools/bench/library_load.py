"""The library bench's load (`library.py`): the order plan, the step services both engines call,
and the figures of one run.

`Services` is the example's `OrderServices` interface; `NoopServices` keeps its effects in a dict
(once per (kind, key), no I/O), so that what is measured is each engine's own cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from repository_after.library import Refused
from repository_after.library.examples.order import Item, OrderParams
from sagabank_tools.bench.measure import LoadFigures


class Services(Protocol):
    def reserve_items(self, *, key: str, order_id: str, items: str) -> str: ...
    def release_items(self, *, key: str) -> None: ...
    def charge(self, *, key: str, user_id: str, amount: int) -> str: ...
    def refund(self, *, key: str) -> None: ...
    def create_shipment(self, *, key: str, address: str) -> str: ...
    def shipped(self, *, key: str) -> bool: ...
    def close(self) -> None: ...


class NoopServices:
    """`OrderServices`' methods on a dict: each effect once per (kind, key), no I/O."""

    def __init__(self) -> None:
        self.effects: dict[tuple[str, str], str] = {}

    def _apply(self, kind: str, key: str, value: str) -> str:
        return self.effects.setdefault((kind, key), value)

    def reserve_items(self, *, key: str, order_id: str, items: str) -> str:
        return self._apply("reserve", key, f"rsv-{order_id}-{len(items)}")

    def release_items(self, *, key: str) -> None:
        self._apply("release", key, "released")

    def charge(self, *, key: str, user_id: str, amount: int) -> str:
        return self._apply("charge", key, f"pay-{user_id}-{amount}")

    def refund(self, *, key: str) -> None:
        self._apply("refund", key, "refunded")

    def create_shipment(self, *, key: str, address: str) -> str:
        if not address:
            raise Refused("no shipping address")
        return self._apply("ship", key, address)

    def shipped(self, *, key: str) -> bool:
        return ("ship", key) in self.effects

    def close(self) -> None:
        pass


def orders(n: int) -> list[OrderParams]:
    """n orders; every 10th has no shipping address (refused at the pivot: compensated)."""
    return [
        OrderParams(
            order_id=f"order-{i}",
            user_id=f"user-{i % 50}",
            items=[Item(sku=f"sku-{i % 7}", quantity=1 + i % 3)],
            total_amount=1_000 + i,
            shipping_address="" if i % 10 == 9 else f"{i} Bench Street",
        )
        for i in range(n)
    ]


async def load(
    plan: list[OrderParams], concurrency: int, one: Callable[[OrderParams], Awaitable[str]]
) -> tuple[list[float], float, float, dict[str, int]]:
    """(latencies, wall seconds, CPU seconds of this process, outcome counts)."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    counts: dict[str, int] = {}

    async def run(order: OrderParams) -> None:
        async with gate:
            start = time.perf_counter()
            outcome = await one(order)
            latencies.append(time.perf_counter() - start)
            counts[outcome] = counts.get(outcome, 0) + 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(run(order) for order in plan))
    return latencies, time.perf_counter() - wall0, time.process_time() - cpu0, counts


def figures(
    latencies: list[float],
    wall: float,
    cpu: float,
    counts: dict[str, int],
    writes: int,
    commits: int,
) -> dict[str, float]:
    n = len(latencies)
    load = LoadFigures.of(latencies, wall, cpu, 0.0)
    return {
        "per_second": load.per_second,
        "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms,
        "cpu_ms_per_saga": load.client_cpu_ms,
        "log_writes_per_saga": writes / n,
        "log_commits_per_saga": commits / n,
        "completed": float(counts.get("completed", 0)),
        "compensated": float(counts.get("compensated", 0)),
    }
