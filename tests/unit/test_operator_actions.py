"""An operator closes a parked saga by hand (`resolve`): what the log then says, and that no
lease is left behind, also when a driver of the same process is running at that moment.

The saga row's status is what lists, counts and the dashboard show: after a resolve it must say
`resolved`. The lease taken for the action is given back at once, or handed to the driver of
this process that is running (a repeated request started one): that driver reads the saga at
rest and must then give the lease up, or the worker would renew it for ever and every other
worker's operator action on the saga would be refused as "being driven by another worker".
"""

from __future__ import annotations

import asyncio

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_ports import StoredSaga
from tests.fakes import LocalParticipant
from tests.unit.test_leases_in_process import PARAMS, books, worker
from tests.unit.test_operation_attempts import Refusing

REASON = "compensation compensate_debit refused: account_frozen"


class LoadHeld(InMemorySagaLog):
    """Once armed, holds the next `load` until `go` is set (a read in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed, self.entered, self.go = False, asyncio.Event(), asyncio.Event()

    async def load(self, saga_id: str) -> StoredSaga | None:
        if self.armed:
            self.armed = False
            self.entered.set()
            await self.go.wait()
        return await super().load(saga_id)


async def parked(log: InMemorySagaLog) -> Orchestrator:
    """A transfer whose credit and compensation are both refused: parked, lease given back."""
    participant = Refusing(
        LocalParticipant(await books()),
        {"credit": (404, "account_not_found"), "compensate_debit": (409, "account_frozen")},
    )
    first = worker(log, participant, "first", ttl=60.0)
    _, state = await first.run(TRANSFER.name, PARAMS, saga_id="t-1")
    assert (state.status, state.parked_reason) == (SagaStatus.FAILED_NEEDS_ATTENTION, REASON)
    return first


async def test_a_resolved_saga_says_resolved_in_the_log_and_leaves_no_lease() -> None:
    log = InMemorySagaLog()
    await parked(log)
    operator = worker(log, LocalParticipant(await books()), "operator", ttl=60.0)
    state = await operator.resolve("t-1", note="refunded by hand")
    assert state.status is SagaStatus.RESOLVED
    summary = await log.summary("t-1")
    assert summary is not None
    assert summary.status == "resolved"
    assert await log.count_by_status() == {"resolved": 1}
    stored = await log.load("t-1")
    assert stored is not None
    assert (stored.events[-1].kind, stored.events[-1].note) == (
        EventKind.OPERATOR_RESOLVE,
        "refunded by hand",
    )
    assert "t-1" not in operator._leases
    assert await log.acquire("t-1", "someone-else", ttl=60.0) is not None  # nobody holds it


async def test_a_resolve_while_a_driver_of_this_process_runs_leaves_no_lease_behind() -> None:
    log = LoadHeld()
    await parked(log)
    w = worker(log, LocalParticipant(await books()), "w", ttl=60.0)
    log.armed = True
    assert await w.start(TRANSFER.name, PARAMS, saga_id="t-1") == ("t-1", False)  # a repeat
    await log.entered.wait()  # its driver is reading the saga, holding no lease
    state = await w.resolve("t-1", note="refunded by hand")  # the lease is left to that driver
    assert state.status is SagaStatus.RESOLVED
    log.go.set()
    assert (await w.drive("t-1")).status is SagaStatus.RESOLVED  # the driver sees it at rest
    assert "t-1" not in w._leases
    assert await log.acquire("t-1", "someone-else", ttl=60.0) is not None  # nobody holds it
