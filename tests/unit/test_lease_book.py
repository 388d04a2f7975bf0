"""The lease book keeps the lease the log honours when two grants of a saga end out of order."""

from __future__ import annotations

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.saga_ports import Lease


async def test_a_late_create_does_not_replace_the_newer_lease_of_the_start_up_claim() -> None:
    log = InMemorySagaLog()
    book = LeaseBook(log, owner="a", ttl=60.0)
    created = await log.create(
        saga_id="t-1",
        definition="transfer",
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
