"""The lease book keeps the lease the log honours when two grants of a saga, or a grant and a
renewal, end out of order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.saga_ports import Lease


async def test_a_late_create_does_not_replace_the_newer_lease_of_the_start_up_claim() -> None:
    log = InMemorySagaLog()
    book = LeaseBook(log, owner="a", ttl=60.0)
    created = await log.create(
        saga_id="t-1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[SagaEvent(EventKind.STARTED, at="2026-12-04T00:00:00.000000Z")],
        owner="a",
        ttl=60.0,
    )
    assert created is not None
    # The start-up claim re-leases the saga before the create's caller records its lease.
    [claimed] = await book.claim(limit=10, include_own=True)
    assert claimed.fence == created.fence + 1

    async def late_create() -> Lease:
        return created

    await book.take(late_create)
    assert await book.current("t-1") == claimed
    await log.append("t-1", [], status="started", lease=claimed)  # the log honours it


async def test_renewing_a_lapsed_lease_does_not_replace_a_newer_one_taken_meanwhile() -> None:
    renewed, go_on = asyncio.Event(), asyncio.Event()

    class GatedLog(InMemorySagaLog):
        async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
            kept = await super().renew(leases, ttl=ttl)
            renewed.set()  # the log renewed the old lease; its caller has not resumed yet
            await go_on.wait()
            return kept

    log = GatedLog()
    book = LeaseBook(log, owner="a", ttl=0.0)  # every lease has lapsed: `current` renews
    created = await log.create(
        saga_id="t-1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[SagaEvent(EventKind.STARTED, at="2026-12-04T00:00:00.000000Z")],
        owner="a",
        ttl=60.0,
    )
    assert created is not None

    async def got() -> Lease:
        return created

    await book.take(got)
    current = asyncio.ensure_future(book.current("t-1"))
    await renewed.wait()
    # The start-up claim re-leases the saga while `current` waits for the renewal's answer.
    [claimed] = await book.claim(limit=10, include_own=True)
    go_on.set()
    assert await current == created
    assert book.held("t-1") == claimed  # the newer lease, the one the log honours, is kept
