"""Two orchestrators on one saga log: takeover after lease expiry and a fenced-out zombie.

Worker A is "paused" inside its debit call (the participant blocks on an event) with a lease that
has already lapsed (ttl 0); worker B claims the saga and finishes it. When A wakes up, its call
returns, its next log write is refused (LeaseLost) and it makes no further call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, InvalidTransition, SagaEvent, SagaStatus
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import audit
from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.ports import StorageError
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import (
    CallResult,
    Lease,
    Participant,
    SagaLog,
    StoredSaga,
)
from tests.fakes import LocalParticipant

PARAMS = {"source": "alice", "target": "bob", "amount": 300}
POLICY = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)


@dataclass
class PausedParticipant:
    """Blocks every call until `wake` is set, then delegates."""

    inner: LocalParticipant
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0

    async def call(self, **kwargs: Any) -> CallResult:
        self.calls += 1
        self.entered.set()
        await self.wake.wait()
        return await self.inner.call(**kwargs)


class LateLoad(InMemorySagaLog):
    """After `hold()`, the next `load` reads the log at once but answers only when `go` is set
    (a slow answer): the reader's view is the log as it was when `entered` was set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.go, self._armed = asyncio.Event(), asyncio.Event(), False

    def hold(self) -> None:
        self._armed = True

    async def load(self, saga_id: str) -> StoredSaga | None:
        stored = await super().load(saga_id)
        if self._armed:
            self._armed = False
            self.entered.set()
            await self.go.wait()
        return stored


def worker(log: SagaLog, participant: Participant, name: str, ttl: float) -> Orchestrator:
    return Orchestrator(
        log=log,
        participant=participant,
        definitions=DEFINITIONS,
        forward=POLICY,
        settle=POLICY,
        observers=(),
        worker_id=name,
        lease_ttl=ttl,
    )


async def books() -> InMemoryAccountStore:
    store = InMemoryAccountStore()
    for name, balance in (("alice", 1000), ("bob", 0)):
        await store.transaction(
            lambda tx, n=name, b=balance: accounts.open_account(tx, account_id=n, initial_balance=b)
        )
    return store


async def assert_balances(store: InMemoryAccountStore) -> None:
    report = await store.read(audit)
    assert report.ok, report.violations
    balances = {x.account_id: x.balance for x in await store.read(lambda r: r.list_accounts())}
    assert balances == {"alice": 700, "bob": 300}


async def test_a_zombie_worker_is_fenced_out_after_another_takes_over() -> None:
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=0.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # A is inside its debit call, its lease already lapsed

    b = worker(log, LocalParticipant(store), "b", ttl=60.0)
    assert await b.claim() == ["t-1"]
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED

    paused.wake.set()
    state_seen_by_a = await a.drive("t-1")
    assert state_seen_by_a.status is SagaStatus.COMPLETED  # B's result, read back from the log
    assert paused.calls == 1  # A made no call after losing the lease
    stored = await log.load("t-1")
    assert stored is not None
    intents = [e for e in stored.events if e.kind is EventKind.OPERATION_STARTED]
    assert [e.operation for e in intents] == ["debit", "debit", "credit"]  # A's, then B's
    report = await store.read(audit)
    assert report.ok, report.violations
    balances = {x.account_id: x.balance for x in await store.read(lambda r: r.list_accounts())}
    assert balances == {"alice": 700, "bob": 300}


async def test_a_worker_does_not_drive_a_saga_another_worker_holds() -> None:
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()
    b_participant = LocalParticipant(store)
    b = worker(log, b_participant, "b", ttl=60.0)
    _, created = await b.start(TRANSFER.name, PARAMS, saga_id="t-1")  # duplicate request
    assert not created
    assert (await b.drive("t-1")).status == "debiting"  # left as A has it
    assert await b.claim() == []
    assert b_participant.calls == []
    paused.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    await a.close()


async def test_an_operator_action_on_a_saga_another_worker_holds_is_refused() -> None:
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()
    operator = worker(log, LocalParticipant(store), "operator", ttl=60.0)
    with pytest.raises(InvalidTransition, match="another worker"):
        await operator.resolve("t-1", note="close it")
    paused.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    stored = await log.load("t-1")
    assert stored is not None
    assert all(e.kind is not EventKind.OPERATOR_RESOLVE for e in stored.events)


async def test_a_worker_shutting_down_hands_its_sagas_over_at_once() -> None:
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()
    await a.close()  # graceful: releases the lease instead of letting it run for 60 s
    b = worker(log, LocalParticipant(store), "b", ttl=60.0)
    assert await b.claim() == ["t-1"]
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED
    report = await store.read(audit)
    assert report.ok, report.violations


async def test_a_start_up_claim_of_its_own_sagas_does_not_stop_a_running_driver() -> None:
    # The start-up claim re-leases sagas left under this worker's id, which bumps the fence of a
    # saga a request may have started just before: its driver must carry on under the new lease.
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # the driver is inside its debit call
    assert await a.claim(include_own=True) == ["t-1"]
    paused.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    report = await store.read(audit)
    assert report.ok, report.violations
    await a.close()


async def test_a_refused_operator_action_does_not_strand_the_saga() -> None:
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    dead = worker(log, paused, "dead", ttl=0.0)  # its lease lapses at once
    await dead.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # dies mid-debit, as far as the log can tell
    operator = worker(log, LocalParticipant(store), "operator", ttl=60.0)
    with pytest.raises(InvalidTransition, match="only a parked saga"):
        await operator.retry("t-1")  # takes the lapsed lease, is refused, must give it back
    assert "t-1" not in operator._leases
    survivor = worker(log, LocalParticipant(store), "survivor", ttl=60.0)
    assert await survivor.claim() == ["t-1"]
    assert (await survivor.drive("t-1")).status is SagaStatus.COMPLETED


async def test_an_operator_action_on_an_unknown_saga_is_not_found() -> None:
    operator = worker(InMemorySagaLog(), LocalParticipant(await books()), "op", ttl=60.0)
    with pytest.raises(SagaNotFound) as refused:
        await operator.resolve("nope")
    assert refused.value.args == ("nope",)  # the 404 names the saga asked for


async def test_a_repeated_start_resumes_a_saga_whose_worker_died() -> None:
    # The client repeats its request (same id, same transfer) to another worker after the first
    # one died mid-debit: nobody holds the saga, so this worker takes its lease and finishes it,
    # from the log, with the same key.
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    dead = worker(log, paused, "dead", ttl=0.0)  # its lease lapses at once
    await dead.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # dies mid-debit, as far as the log can tell
    participant = LocalParticipant(store)
    survivor = worker(log, participant, "survivor", ttl=60.0)
    assert await survivor.start(TRANSFER.name, PARAMS, saga_id="t-1") == ("t-1", False)
    assert (await survivor.drive("t-1")).status is SagaStatus.COMPLETED
    assert [(c.operation, c.transaction_id) for c in participant.calls] == [
        ("debit", "t-1"),
        ("credit", "t-1"),
    ]
    stored = await log.load("t-1")
    assert stored is not None
    assert (stored.status, survivor.state_of(stored).status) == ("completed", "completed")
    paused.wake.set()
    assert (await dead.drive("t-1")).status is SagaStatus.COMPLETED  # fenced out, reads back
    assert paused.calls == 1
    report = await store.read(audit)
    assert report.ok, report.violations
    balances = {x.account_id: x.balance for x in await store.read(lambda r: r.list_accounts())}
    assert balances == {"alice": 700, "bob": 300}


async def test_a_worker_whose_saga_an_operator_took_over_cannot_write_before_its_lease_lapses() -> (
    None
):
    # A is alive and its lease has not lapsed by its own clock (ttl 60 s), but an operator's
    # recovery took the saga over (`take_over`: the fence moves on). A's next write must be
    # refused by the log itself (the fence), not only by A's own estimate of its lease.
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # A is inside its debit call
    b = worker(log, LocalParticipant(store), "b", ttl=60.0)
    assert await b.recover(take_over=True) == {"completed": 1}
    stored = await log.load("t-1")
    assert stored is not None
    events_after_b = stored.events
    paused.wake.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED  # B's result, read back
    assert paused.calls == 1  # A made no call after its write was refused
    stored = await log.load("t-1")
    assert stored is not None
    assert stored.events == events_after_b  # nothing of A's written after the takeover
    report = await store.read(audit)
    assert report.ok, report.violations


async def test_a_worker_whose_write_is_refused_after_a_takeover_gives_the_saga_up() -> None:
    # A is alive (ttl 60 s) while a recovery takes the saga over and is still driving it. A's
    # next write is refused by the fence: A must drop the lease it lost (not renew it, not retry
    # under it) and stop, leaving the saga to the recovery.
    store, log = await books(), InMemorySagaLog()
    paused = PausedParticipant(LocalParticipant(store))
    a = worker(log, paused, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # A is inside its debit call
    b_calls = PausedParticipant(LocalParticipant(store))
    b = worker(log, b_calls, "b", ttl=60.0)
    recovering = asyncio.ensure_future(b.recover(take_over=True))
    await b_calls.entered.wait()  # B logged the debit's intent and is inside its debit call
    paused.wake.set()
    state_seen_by_a = await a.drive("t-1")
    assert state_seen_by_a.status == "debiting"  # as B has it, read back from the log
    assert "t-1" not in a._leases  # the lost lease is no longer renewed
    assert paused.calls == 1
    b_calls.wake.set()
    assert await recovering == {"completed": 1}
    await assert_balances(store)


class AppendFails(InMemorySagaLog):
    """The first `append` fails as a database outage would (StorageError)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        if not self.failed:
            self.failed = True
            raise StorageError("database unavailable")
        await super().append(saga_id, events, status=status, lease=lease, release=release)


async def test_a_driver_that_fails_unexpectedly_stops_renewing_its_lease() -> None:
    # The driver task ends with an error it cannot handle (here the log is unreachable when it
    # writes the debit's outcome). The worker must stop renewing the saga's lease, so that it
    # lapses and the saga is claimed again (by this worker or another) instead of staying
    # leased, undriven, as long as this process lives.
    store, log = await books(), AppendFails()
    participant = LocalParticipant(store)
    a = worker(log, participant, "a", ttl=60.0)
    await a.start(TRANSFER.name, PARAMS, saga_id="t-1")
    with pytest.raises(StorageError, match="database unavailable"):
        await a.drive("t-1")
    assert "t-1" not in a._leases
    assert len(a._leases) == 0  # nor does it count against the worker's `max_sagas`
    assert [c.operation for c in participant.calls] == ["debit"]
    await a.close()


async def test_a_repeated_start_of_a_saga_finished_meanwhile_leaves_no_lease_behind() -> None:
    # A repeated request reaches worker A while the saga is being driven elsewhere. A reads the
    # log (the saga is unfinished), and before it tries to take the lease the other worker
    # finishes the saga and releases it: A takes the free lease, reads the log again, finds
    # nothing to do, and must give the lease back (or keep renewing it for a finished saga).
    store, log = await books(), LateLoad()
    paused = PausedParticipant(LocalParticipant(store))
    dead = worker(log, paused, "dead", ttl=0.0)  # its lease lapses at once
    await dead.start(TRANSFER.name, PARAMS, saga_id="t-1")
    await paused.entered.wait()  # dies mid-debit, as far as the log can tell
    a_participant = LocalParticipant(store)
    a = worker(log, a_participant, "a", ttl=60.0)
    log.hold()
    assert await a.start(TRANSFER.name, PARAMS, saga_id="t-1") == ("t-1", False)
    await log.entered.wait()  # A's driver has read the unfinished saga; the answer is late
    b = worker(log, LocalParticipant(store), "b", ttl=60.0)
    assert await b.claim() == ["t-1"]
    assert (await b.drive("t-1")).status is SagaStatus.COMPLETED  # and released
    log.go.set()
    assert (await a.drive("t-1")).status is SagaStatus.COMPLETED
    assert "t-1" not in a._leases
    assert a_participant.calls == []
    assert await log.acquire("t-1", "c", ttl=60.0) is not None  # free in the log too
    paused.wake.set()
    assert (await dead.drive("t-1")).status is SagaStatus.COMPLETED  # fenced out
    await assert_balances(store)
