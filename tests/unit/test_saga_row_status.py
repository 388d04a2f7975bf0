"""The saga row's status (what lists, counts and the dashboard show) follows the saga at every
durable write, not only at the end: the intent of the next operation, the unknown attempt logged
before a retry, and the last write, which also gives the lease up in the same write.

A running saga whose row said nothing (or something stale) would be invisible to an operator
looking for sagas stuck in `crediting`; a last write that kept the lease would cost an extra
durable write per saga (docs/performance.md: a happy transfer is three).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import SagaEvent, SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.saga_ports import CallResult, Lease
from tests.fakes import LocalParticipant
from tests.unit.test_leases_in_process import PARAMS, books, worker


@dataclass
class HeldCalls:
    """Holds calls number `held` (1-based) until the test lets each go."""

    inner: LocalParticipant
    held: tuple[int, ...]
    entered: dict[int, asyncio.Event] = field(default_factory=dict)
    go: dict[int, asyncio.Event] = field(default_factory=dict)
    count: int = 0

    def __post_init__(self) -> None:
        for n in self.held:
            self.entered[n], self.go[n] = asyncio.Event(), asyncio.Event()

    async def call(self, **kwargs: Any) -> CallResult:
        self.count += 1
        n = self.count
        if n in self.held:
            self.entered[n].set()
            await self.go[n].wait()
        return await self.inner.call(**kwargs)


class CountingLog(InMemorySagaLog):
    """Counts the durable writes after `create`: appends and separate releases."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        self.writes.append(f"append {status}" + (" +release" if release else ""))
        await super().append(saga_id, events, status=status, lease=lease, release=release)

    async def release(self, leases: Sequence[Lease]) -> None:
        self.writes.append("release")
        await super().release(leases)


async def status_of(log: InMemorySagaLog) -> str | None:
    summary = await log.summary("t-1")
    return None if summary is None else summary.status


async def test_the_saga_row_says_what_the_saga_is_doing_at_every_write() -> None:
    store, log = await books(), CountingLog()
    unknown_first_debit = LocalParticipant(
        store, faults=lambda op, n: "before" if (op, n) == ("debit", 1) else None
    )
    calls = HeldCalls(unknown_first_debit, held=(2, 3))
    a = worker(log, calls, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await calls.entered[2].wait()  # the debit's retry: the unknown attempt is logged before it
    assert (log.writes, await status_of(log)) == (["append debiting"], "debiting")
    calls.go[2].set()
    await calls.entered[3].wait()  # the credit, after its intent (with the debit's outcome)
    assert (log.writes[1:], await status_of(log)) == (["append crediting"], "crediting")
    calls.go[3].set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    # The last write carries the outcome, the final status and the lease's release: one write.
    assert log.writes == ["append debiting", "append crediting", "append completed +release"]
    assert await status_of(log) == "completed"
    assert "t-1" not in a._leases
    assert await log.acquire("t-1", "someone-else", ttl=60.0) is not None
    await a.close()
