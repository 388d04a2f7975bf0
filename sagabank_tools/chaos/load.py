"""The load of a chaos run: a seeded plan of sagas, submitted through the kills.

The transfer plan (`plan`): transfers between the demo accounts acc-01…acc-10 with amounts up
to 30,000, so some are refused for insufficient funds; the order plan is `order_plan.py`'s.
Each saga is POSTed to the orchestrator (`/transfers`, `/sagas/order`) with its own
`transaction-id`; when the orchestrator dies under a request (or answers 5xx), the client waits
until it is back and submits the same saga again with the same id (a duplicate is replayed,
never re-run).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

ACCOUNTS = tuple(f"acc-{i:02d}" for i in range(1, 11))
_RESUBMIT_BACKOFF = 0.1  # a client's pause before re-sending; the `up` event does the real gating


class Planned(Protocol):
    """One saga of a plan: its id and the body of its POST."""

    @property
    def transaction_id(self) -> str: ...

    def body(self) -> dict[str, object]: ...


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    transaction_id: str
    source: str
    target: str
    amount: int

    def body(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "amount": self.amount}


def plan(seed: int, transfers: int) -> list[PlannedTransfer]:
    rng = random.Random(f"plan:{seed}")
    planned = []
    for index in range(transfers):
        source, target = rng.sample(ACCOUNTS, 2)
        planned.append(
            PlannedTransfer(f"chaos-{seed}-{index:06d}", source, target, rng.randint(1, 30_000))
        )
    return planned


@dataclass
class LoadResult:
    answers: Counter[int] = field(default_factory=Counter)  # final HTTP status of each POST
    resubmitted: int = 0  # POSTs that died with the orchestrator (or got 5xx), sent again
    unexpected: list[str] = field(default_factory=list)


async def submit(
    url: str,
    path: str,
    sagas: Sequence[Planned],
    *,
    concurrency: int,
    up: asyncio.Event,
    on_answer: Callable[[int], Awaitable[None]],
) -> LoadResult:
    """POST every saga to `path` (at most `concurrency` at a time); `on_answer(n)` after the
    n-th answer."""
    result = LoadResult()
    gate = asyncio.Semaphore(concurrency)
    answered = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:

        async def one(saga: Planned) -> None:
            nonlocal answered
            async with gate:
                while True:
                    await up.wait()
                    try:
                        response = await client.post(
                            path, json=saga.body(), headers={"transaction-id": saga.transaction_id}
                        )
                    except httpx.TransportError:
                        result.resubmitted += 1
                        await asyncio.sleep(_RESUBMIT_BACKOFF)
                        continue
                    if response.status_code >= 500:
                        # an unknown outcome at the client's edge: same id again, as a client would
                        result.resubmitted += 1
                        await asyncio.sleep(_RESUBMIT_BACKOFF)
                        continue
                    break
            result.answers[response.status_code] += 1
            if response.status_code not in (200, 202):
                result.unexpected.append(
                    f"{saga.transaction_id}: {response.status_code} {response.text[:200]}"
                )
            answered += 1
            await on_answer(answered)

        await asyncio.gather(*(one(s) for s in sagas))
    return result
