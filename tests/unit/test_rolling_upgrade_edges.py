"""The edges of what becomes of a saga of a version this server lacks
(`service_layer.resumption`), on the fleet of test_rolling_upgrade.py: a saga idle for exactly
the grace is not yet parked ("longer than the grace"), the `parked` event is stamped and seen by
the observers as the transition it is, and a saga that needs attention for another reason has no
parked reason."""

from __future__ import annotations

from dataclasses import replace

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaEvent, SagaStatus
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.orchestrator import SagaTransition
from repository_after.service_layer.resumption import state_without_definition
from repository_after.service_layer.saga_ports import Lease
from tests.unit.test_definition_versions import Carrier
from tests.unit.test_rolling_upgrade import GRACE, TTL, Clock, dies_before_its_send, older

# The fleet's stepped clock (a fixture), used under its own name.
from tests.unit.test_rolling_upgrade import clock as clock


class Acquires(InMemorySagaLog):
    """Records who asked for a saga's lease (`acquire`: a lease taken outside a claim)."""

    def __init__(self, *, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.owners: list[str] = []

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        self.owners.append(owner)
        return await super().acquire(saga_id, owner, ttl=ttl)


async def test_a_saga_idle_for_exactly_the_grace_is_left_not_parked(clock: Clock) -> None:
    log = Acquires(clock=clock)
    await dies_before_its_send(log, "newer-1")  # its last event: now
    clock.advance(GRACE)
    old = older(log, Carrier())
    # Asked to drive it (no claim): not overdue, so it does not even take the lease.
    assert (await old.drive("s-2")).status == "sending"
    assert log.owners == []
    # Nor does its claim take it, nor its sweep park it.
    assert await old.claim() == []
    assert await old.sweep() == []
    assert log.owners == []
    stored = await log.load("s-2")
    assert stored is not None
    assert stored.events[-1].kind is EventKind.OPERATION_STARTED


async def test_the_parked_event_is_stamped_and_the_observers_see_it(clock: Clock) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(GRACE + TTL)
    seen: list[SagaTransition] = []
    old = older(log, Carrier(), (seen.append,))
    assert (await old.drive("s-2")).status == SagaStatus.FAILED_NEEDS_ATTENTION
    stored = await log.load("s-2")
    assert stored is not None
    parked = stored.events[-1]
    assert (parked.kind, parked.at) == (EventKind.PARKED, utc_now())
    assert seen == [
        SagaTransition("s-2", "ship", parked, "sending", SagaStatus.FAILED_NEEDS_ATTENTION)
    ]


async def test_a_saga_needing_attention_for_another_reason_has_no_parked_reason(
    clock: Clock,
) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    stored = await log.load("s-2")
    assert stored is not None
    exhausted = SagaEvent(EventKind.RETRIES_EXHAUSTED, at=utc_now(), note="gave up")
    failed = replace(
        stored, status=SagaStatus.FAILED_NEEDS_ATTENTION, events=(*stored.events, exhausted)
    )
    state = state_without_definition(failed)
    assert (state.status, state.parked_reason) == (SagaStatus.FAILED_NEEDS_ATTENTION, None)
    assert state.history == failed.events
