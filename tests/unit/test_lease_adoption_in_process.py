"""A driver whose saga is leased to its own worker again: it adopts a direct successor of its
lease, and drives anew from the log when another worker held the saga in between.

The start-up claim re-leases the sagas left under the worker's id, including one it is driving:
a write in flight under the old fence is refused, and is written again under the new lease (no
re-read, no call re-sent). When the fence skipped (another worker took the saga, wrote, lost it,
and this worker claimed it back), the driver's view is stale: writing it would corrupt the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaEvent, SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.audit import audit
from repository_after.service_layer.saga_ports import CallResult, Lease
from tests.fakes import LocalParticipant
from tests.unit.test_leases_in_process import (
    PARAMS,
    LateLoad,
    PausedParticipant,
    books,
    worker,
)


class FirstAppendHeld(InMemorySagaLog):
    """Holds the first `append` until `go` is set (a write in flight), then writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.go, self._held = asyncio.Event(), asyncio.Event(), False

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        if not self._held:
            self._held = True
            self.entered.set()
            await self.go.wait()
        await super().append(saga_id, events, status=status, lease=lease, release=release)


@dataclass
class Gated:
    """Blocks each call of `operation` until `wake` is set, then delegates."""

    inner: LocalParticipant
    operation: str
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, **kwargs: Any) -> CallResult:
        if kwargs["operation"] == self.operation:
            self.entered.set()
            await self.wake.wait()
        return await self.inner.call(**kwargs)


async def assert_transferred(store: InMemoryAccountStore) -> None:
    report = await store.read(audit)
    assert report.ok, report.violations
    balances = {x.account_id: x.balance for x in await store.read(lambda r: r.list_accounts())}
    assert balances == {"alice": 700, "bob": 300}


async def test_a_write_refused_under_the_fence_its_own_claim_replaced_is_written_again() -> None:
    store, log = await books(), FirstAppendHeld()
    participant = LocalParticipant(store)
    a = worker(log, participant, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await log.entered.wait()  # the debit's outcome and the credit's intent, in flight
    assert await a.claim(include_own=True) == ["t-1"]  # the start-up claim bumps the fence
    log.go.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    intents = [e.operation for e in stored.events if e.kind is EventKind.OPERATION_STARTED]
    assert intents == ["debit", "credit"]  # written again, not restarted from the log
    assert [c.operation for c in participant.calls] == ["debit", "credit"]
    await assert_transferred(store)
    await a.close()


async def test_a_saga_claimed_back_after_another_worker_wrote_is_driven_anew_from_the_log() -> None:
    store, log = await books(), InMemorySagaLog()
    a_calls = Gated(LocalParticipant(store), "debit")
    a = worker(log, a_calls, "a", ttl=0.0)  # its lease lapses at once
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await a_calls.entered.wait()  # A is paused inside its debit call
    b_calls = Gated(LocalParticipant(store), "credit")
    b = worker(log, b_calls, "b", ttl=0.0)
    assert await b.claim() == ["t-1"]
    await b_calls.entered.wait()  # B logged the debit and the credit's intent, then paused
    assert await a.claim() == ["t-1"]  # A takes the saga back while its old driver still runs
    a_calls.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert a.state_of(stored).status is SagaStatus.COMPLETED  # the log still replays
    b_calls.wake.set()
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED  # B is fenced out
    await assert_transferred(store)


async def test_an_unknown_attempt_of_a_stale_view_is_not_written_after_another_workers_events() -> (
    None
):
    # A's debit is in flight when B takes the saga over and A claims it back: when A's debit
    # answers "unknown", the attempt it would log before retrying belongs to A's stale view (B
    # has applied the debit and logged the credit's intent meanwhile). Writing it under A's new
    # lease would put a debit attempt after B's credit intent; it must be refused, and A must
    # drive anew from the log.
    store, log = await books(), InMemorySagaLog()
    unknown_first_debit = LocalParticipant(
        store, faults=lambda op, n: "before" if (op, n) == ("debit", 1) else None
    )
    a_calls = Gated(unknown_first_debit, "debit")
    a = worker(log, a_calls, "a", ttl=0.0)  # its lease lapses at once
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await a_calls.entered.wait()  # A is paused inside its first debit attempt
    b_calls = Gated(LocalParticipant(store), "credit")
    b = worker(log, b_calls, "b", ttl=0.0)
    assert await b.claim() == ["t-1"]
    await b_calls.entered.wait()  # B logged the debit and the credit's intent, then paused
    assert await a.claim() == ["t-1"]  # two fences after the lease A's view was built under
    a_calls.wake.set()  # A's debit answers 500: unknown
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert [(e.kind.value, e.operation, e.outcome and e.outcome.value) for e in stored.events] == [
        ("started", None, None),
        ("operation_started", "debit", None),  # A's
        ("operation_started", "debit", None),  # B's: the debit asked again, with the same key
        ("attempt", "debit", "succeeded"),  # then B's credit intent
        ("operation_started", "credit", None),
        ("operation_started", "credit", None),  # A's, from the log it read again
        ("attempt", "credit", "succeeded"),
    ]
    assert [c.operation for c in unknown_first_debit.calls] == ["debit", "credit"]
    b_calls.wake.set()
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED  # B is fenced out
    await assert_transferred(store)


async def test_the_last_outcome_of_a_stale_view_is_not_written_after_another_workers_events() -> (
    None
):
    # The same takeover and claim-back, during the last operation (the credit): A's credit
    # answer, and the `completed` it would write with it, belong to A's stale view. The final
    # write must be refused too, and A must drive anew from the log (asking the credit again).
    store, log = await books(), InMemorySagaLog()
    a_participant = LocalParticipant(store)
    a_calls = Gated(a_participant, "credit")
    a = worker(log, a_calls, "a", ttl=0.0)  # its lease lapses at once
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await a_calls.entered.wait()  # A is paused inside its credit call
    b_calls = Gated(LocalParticipant(store), "credit")
    b = worker(log, b_calls, "b", ttl=0.0)
    assert await b.claim() == ["t-1"]
    await b_calls.entered.wait()  # B logged the credit's intent again, then paused
    assert await a.claim() == ["t-1"]  # two fences after the lease A's view was built under
    a_calls.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert [(e.kind.value, e.operation) for e in stored.events] == [
        ("started", None),
        ("operation_started", "debit"),
        ("attempt", "debit"),  # then A's credit intent
        ("operation_started", "credit"),
        ("operation_started", "credit"),  # B's
        ("operation_started", "credit"),  # A's again, from the log it read again
        ("attempt", "credit"),
    ]
    assert [c.operation for c in a_participant.calls] == ["debit", "credit", "credit"]
    b_calls.wake.set()
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED  # B is fenced out
    await assert_transferred(store)


async def test_a_write_refused_after_a_takeover_and_a_claim_back_keeps_the_new_lease() -> None:
    # A's write is in flight when B takes the saga over and A's worker claims it back: the write
    # is refused under A's old fence, and the lease now held (two fences on) is no successor of
    # it. A must keep that new lease (it is this worker's, just claimed) and drive the saga anew
    # from the log; dropping it would leave the saga leased to A, undriven, until it lapsed.
    store, log = await books(), FirstAppendHeld()
    participant = LocalParticipant(store)
    a = worker(log, participant, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await log.entered.wait()  # the debit's outcome and the credit's intent, in flight
    assert [x.fence for x in await log.claim("b", limit=1, ttl=0.0, take_over=True)] == [2]
    assert await a.claim() == ["t-1"]  # B is gone; A's worker claims the saga back: fence 3
    log.go.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert [(e.kind.value, e.operation) for e in stored.events] == [
        ("started", None),
        ("operation_started", "debit"),
        ("operation_started", "debit"),  # A's, from the log it read again
        ("attempt", "debit"),
        ("operation_started", "credit"),
        ("attempt", "credit"),
    ]
    assert [c.operation for c in participant.calls] == ["debit", "debit", "credit"]
    assert "t-1" not in a._leases  # released by the last write
    await assert_transferred(store)


async def test_no_call_is_made_on_the_first_view_after_a_takeover_and_a_claim_back() -> None:
    # Between the start (the saga and its first intent logged, its driver task scheduled) and
    # the driver's first call, B takes the saga over and A's worker claims it back: the lease
    # held is two fences past the one A's view was built under. The first call must not be made
    # on that view: A reads the log again first (B could have written meanwhile).
    store, log = await books(), InMemorySagaLog()
    participant = LocalParticipant(store)
    a = worker(log, participant, "a", ttl=0.0)  # its lease lapses at once
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")  # the driver task has not run yet
    assert [x.fence for x in await log.claim("b", limit=1, ttl=0.0)] == [2]  # B, then gone
    assert await a.claim() == ["t-1"]  # fence 3: A's first view was built under fence 1
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    assert [c.operation for c in participant.calls] == ["debit", "credit"]
    stored = await log.load("t-1")
    assert stored is not None
    assert [(e.kind.value, e.operation) for e in stored.events] == [
        ("started", None),
        ("operation_started", "debit"),
        ("operation_started", "debit"),  # A's, from the log it read again
        ("attempt", "debit"),
        ("operation_started", "credit"),
        ("attempt", "credit"),
    ]
    await assert_transferred(store)


async def test_a_view_read_from_the_log_before_a_takeover_is_not_written() -> None:
    # A drives a claimed saga from the log; its read answers late. Meanwhile B takes the saga
    # over, logs the debit's outcome and the credit's intent, and A's worker claims the saga
    # back. A's first write (the debit's intent, from its stale view) would land after B's
    # credit intent and corrupt the log: it must be refused, and A must read the log again.
    store, log = await books(), LateLoad()
    paused = PausedParticipant(LocalParticipant(store))
    dead = worker(log, paused, "dead", ttl=0.0)  # its lease lapses at once
    await dead.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # dies mid-debit, as far as the log can tell
    a_participant = LocalParticipant(store)
    a = worker(log, a_participant, "a", ttl=0.0)
    log.hold()
    assert await a.claim() == ["t-1"]  # fence 2
    await log.entered.wait()  # A's driver has read the log; the answer is late
    b_calls = Gated(LocalParticipant(store), "credit")
    b = worker(log, b_calls, "b", ttl=0.0)
    assert await b.claim() == ["t-1"]  # fence 3
    await b_calls.entered.wait()  # B logged the debit and the credit's intent, then paused
    assert await a.claim() == ["t-1"]  # fence 4
    log.go.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert a.state_of(stored).status is SagaStatus.COMPLETED  # the log still replays
    assert [(e.kind.value, e.operation) for e in stored.events] == [
        ("started", None),
        ("operation_started", "debit"),  # the dead worker's
        ("operation_started", "debit"),  # B's
        ("attempt", "debit"),
        ("operation_started", "credit"),
        ("operation_started", "credit"),  # A's, from the log it read again
        ("attempt", "credit"),
    ]
    assert [c.operation for c in a_participant.calls] == ["credit"]
    b_calls.wake.set()
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED  # B is fenced out
    paused.wake.set()
    assert (await dead.drive("t-1")).status is SagaStatus.COMPLETED  # and so is the dead one
    await assert_transferred(store)


async def test_a_driver_that_adopted_its_own_claims_lease_still_refuses_a_later_stale_view() -> (
    None
):
    # A's write is refused under the fence its own start-up claim replaced, and is written again
    # under the new lease (its direct successor). From then on A drives under that new lease:
    # when B later takes the saga over during A's credit call and A's worker claims it back, A's
    # last write (from its stale view) must still be refused, and A must read the log again.
    store, log = await books(), FirstAppendHeld()
    a_participant = LocalParticipant(store)
    a_calls = Gated(a_participant, "credit")
    a = worker(log, a_calls, "a", ttl=0.0)  # its lease lapses at once
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await log.entered.wait()  # the debit's outcome and the credit's intent, in flight
    assert await a.claim(include_own=True) == ["t-1"]  # fence 2: a direct successor
    log.go.set()
    await a_calls.entered.wait()  # written again under fence 2; A is inside its credit call
    b_calls = Gated(LocalParticipant(store), "credit")
    b = worker(log, b_calls, "b", ttl=0.0)
    assert await b.claim() == ["t-1"]  # fence 3
    await b_calls.entered.wait()  # B logged the credit's intent again, then paused
    assert await a.claim() == ["t-1"]  # fence 4: two fences past A's adopted lease
    a_calls.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert [(e.kind.value, e.operation) for e in stored.events] == [
        ("started", None),
        ("operation_started", "debit"),
        ("attempt", "debit"),  # then A's credit intent, written again under fence 2
        ("operation_started", "credit"),
        ("operation_started", "credit"),  # B's
        ("operation_started", "credit"),  # A's again, from the log it read again
        ("attempt", "credit"),
    ]
    assert [c.operation for c in a_participant.calls] == ["debit", "credit", "credit"]
    b_calls.wake.set()
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED  # B is fenced out
    await assert_transferred(store)
