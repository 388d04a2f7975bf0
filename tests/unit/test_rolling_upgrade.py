"""A rolling upgrade: old and new servers on one saga log, a saga of a version one of them lacks.

A newer server (versions 1 and 2 of `ship`) starts a saga on version 2 and dies before its send.
An older one (version 1 only) never claims it, not even once its lease has lapsed, nor by its own
recovery or a take-over (claims take only the keys a server registers): it takes no turn from a
newer server, which claims it next and completes it, however many older workers claim first.
Only a saga that no running server drives, one that has made no progress for longer than the
grace (`unknown_version_grace`, by the log's clock, since its LAST event), is parked, by the
sweep any worker runs (`Orchestrator.sweep`, in its loop once per lease ttl), with the reason,
for an operator to retry on a server that has its version. `recover()` never claims such a saga
and sweeps at its end; `sagabank recover` reports the saga as left for another server (exit 1)
instead of waiting for it.

One stepped `Clock` for the whole fleet (the memory log's lease clock and `now()`, and the time
events are stamped with): leases lapse and sagas age without sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaEvent, SagaStatus
from repository_after.entrypoints import recover_cli
from repository_after.service_layer import clock as event_clock
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.orchestrator import Observer, Orchestrator, SagaTransition
from repository_after.service_layer.saga_ports import Lease, SagaLog
from repository_after.service_layer.transitions import LOGGER_NAME
from tests.fakes import SimulatedCrash
from tests.unit.test_definition_versions import SHIP_V1, SHIP_V2, Carrier, registry, server

TTL = 10.0
GRACE = 10 * TTL  # the default: 10 lease ttls
START = 1_800_000_000.0  # seconds since the epoch: the fleet's clock when a test begins


@dataclass
class Clock:
    """Frozen until the test steps it. `skew`: how far the workers' clocks (event stamps,
    `utc_now`) run ahead of the log's (`InMemorySagaLog(clock=...)`, the database's)."""

    now: float = START
    skew: float = 0.0

    def __call__(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return int((self.now + self.skew) * 1e9)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(event_clock, "time", fake)  # `utc_now` stamps events by `time.time_ns()`
    return fake


def older(log: SagaLog, carrier: Carrier, observers: Sequence[Observer] = ()) -> Orchestrator:
    """A server still on the previous release: version 1 only."""
    return server(log, carrier, registry(SHIP_V1), worker_id="older", observers=observers)


def newer(log: SagaLog, carrier: Carrier, name: str) -> Orchestrator:
    return server(log, carrier, registry(SHIP_V1, SHIP_V2), worker_id=name)


async def dies_before_its_send(log: SagaLog, name: str, saga_id: str = "s-2") -> None:
    """A newer server drives the saga (starts it, or resumes it: the send's intent is written
    either way, which is progress) and dies before the send lands."""
    dying = newer(log, Carrier(crash_on="send_express"), name)
    if await log.summary(saga_id) is None:
        await dying.start("ship", {"parcel": "p-1"}, saga_id=saga_id)
    else:
        assert await dying.claim() == [saga_id]
    with pytest.raises(SimulatedCrash):
        await dying.drive(saga_id)


def left_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "left for a server" in r.getMessage()]


async def test_an_older_worker_never_claims_a_newer_version_s_saga_and_a_newer_one_ends_it(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(TTL)  # its lease lapses
    carrier = Carrier()
    old = older(log, carrier)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert await old.claim(include_own=True) == []  # its start-up claim
        assert await old.claim() == []
        assert await old.recover(take_over=True) == {}
        assert await old.sweep() == []  # within the grace
    assert carrier.calls == []
    assert left_warnings(caplog) == []  # nothing taken, nothing to say
    stored = await log.load("s-2")
    assert stored is not None
    assert (stored.status, stored.events[-1].kind) == ("sending", EventKind.OPERATION_STARTED)
    # Free all along: a newer server claims it at once, not one ttl later.
    ends = Carrier()
    last = newer(log, ends, "newer-2")
    assert await last.claim() == ["s-2"]
    assert (await last.drive("s-2")).status == SagaStatus.COMPLETED
    assert ends.calls == [("carrier", "send_express")]  # the version 2 step, resent once


async def test_many_older_workers_claiming_first_leave_the_saga_to_the_one_newer_worker(
    clock: Clock,
) -> None:
    """The known limit this fixes: every claim of an older worker used to hold the saga one
    ttl unrenewed, a turn the newer servers did not get; with many older workers claiming first,
    a saga reached the grace and parked although a newer server was up. Here ten older workers
    claim before the newer one every round, for longer than the grace."""
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    olds = [server(log, Carrier(), registry(SHIP_V1), worker_id=f"older-{i}") for i in range(10)]
    up = newer(log, Carrier(crash_on="send_express"), "newer-2")  # up, but loses every send
    for _ in range(int(2 * GRACE / TTL)):
        clock.advance(TTL)
        for old in olds:
            assert await old.claim() == []
            assert await old.sweep() == []
        assert await up.claim() == ["s-2"]  # its turn, every round: the saga makes progress
        with pytest.raises(SimulatedCrash):
            await up.drive("s-2")  # its lease left to lapse, as after a crash
    stored = await log.load("s-2")
    assert stored is not None
    assert EventKind.PARKED not in {e.kind for e in stored.events}
    clock.advance(TTL)
    last = newer(log, Carrier(), "newer-3")
    assert await last.claim() == ["s-2"]
    assert (await last.drive("s-2")).status == SagaStatus.COMPLETED


async def test_a_saga_no_running_server_can_drive_is_parked_by_the_sweep_after_the_grace(
    clock: Clock,
) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    seen: list[SagaTransition] = []
    carrier = Carrier()
    old = older(log, carrier, (seen.append,))
    clock.advance(GRACE)  # no progress for exactly the grace: not longer than it
    assert await old.sweep() == []
    assert await old.claim() == []
    clock.advance(20.0)
    assert await old.sweep() == ["s-2"]
    stored = await log.load("s-2")
    assert stored is not None
    reason = (
        "saga type 'ship' version 2 is not registered on this server, and the saga made no "
        "progress for 120s (worker older): retry it on a server that registers that version "
        "unchanged"
    )
    assert (stored.status, stored.events[-1].kind) == (
        SagaStatus.FAILED_NEEDS_ATTENTION,
        EventKind.PARKED,
    )
    assert stored.events[-1].note == reason
    assert [(t.definition, t.before, t.after) for t in seen] == [
        ("ship", "sending", SagaStatus.FAILED_NEEDS_ATTENTION)
    ]
    assert carrier.calls == []  # nothing was called before parking
    # Parked, its lease released: no worker claims it again, nor sweeps it twice.
    assert await log.claim("anyone", limit=10, ttl=TTL, take_over=True) == []
    assert await old.sweep() == []

    # A server with version 2 shows the reason, and its retry resumes where it stopped.
    carrier = Carrier()
    again = newer(log, carrier, "newer-2")
    assert again.state_of(stored).parked_reason == reason
    assert (await again.retry("s-2", note="version 2 is back")).status == SagaStatus.COMPLETED
    assert carrier.calls == [("carrier", "send_express")]  # not packed twice


async def test_the_sweep_never_parks_a_saga_another_worker_holds(clock: Clock) -> None:
    """Held (its lease renewed) by a server that has its version, however long since its last
    event: the sweep leaves it; once the lease lapses and nobody takes it, it is parked."""
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    (held,) = await log.claim("newer-2", limit=1, ttl=3 * GRACE, take_over=True)
    clock.advance(2 * GRACE)
    old = older(log, Carrier())
    assert await old.sweep() == []
    stored = await log.load("s-2")
    assert stored is not None
    assert stored.status == "sending"
    assert await log.renew([held], ttl=TTL) == {"s-2"}  # still the holder's
    clock.advance(TTL)
    assert await old.sweep() == ["s-2"]


async def test_a_saga_newer_servers_keep_driving_never_parks_however_old_it_is(
    clock: Clock,
) -> None:
    """The grace counts from the saga's last event, not from its start: each time a newer
    server drives it (and dies again), the sweep's count starts over."""
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    old = older(log, Carrier())
    for round_ in range(3):
        clock.advance(0.6 * GRACE)  # its lease long lapsed; 60 s without progress
        assert await old.sweep() == []
        clock.advance(TTL)
        await dies_before_its_send(log, f"newer-{round_ + 2}")  # progress: the intent, again
    assert clock.now - START > 2 * GRACE  # started long before: only the last event counts
    clock.advance(0.9 * GRACE)
    assert await old.sweep() == []
    stored = await log.load("s-2")
    assert stored is not None
    assert EventKind.PARKED not in {e.kind for e in stored.events}
    last = newer(log, Carrier(), "newer-9")
    assert await last.claim() == ["s-2"]
    assert (await last.drive("s-2")).status == SagaStatus.COMPLETED


async def test_a_worker_whose_clock_runs_ahead_does_not_park_it_early(clock: Clock) -> None:
    """The age is read on the log's clock (the one leases expire on), not the sweeping worker's:
    an older worker an hour ahead still sees a saga 10 s without progress."""
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")  # stamped by a clock on time
    clock.advance(TTL)
    clock.skew = 3600.0  # the older worker's clock
    old = older(log, Carrier())
    assert await old.sweep() == []
    clock.skew = 0.0
    probe = await log.acquire("s-2", "probe", ttl=0.0)
    assert probe is not None
    assert probe.fence == 2  # the sweep did not even take the lease (1 was the creator's)
    last = newer(log, Carrier(), "newer-2")
    assert await last.claim() == ["s-2"]
    assert (await last.drive("s-2")).status == SagaStatus.COMPLETED


async def test_asked_to_drive_it_a_server_without_its_version_takes_no_lease_within_the_grace(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a claim (a duplicate request, `drive`): within the grace it is answered as the log
    has it, no lease is taken and nothing is said; past it, the lease is taken and the saga
    parked."""
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(TTL)
    old = older(log, Carrier())
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert (await old.drive("s-2")).status == "sending"
    assert left_warnings(caplog) == []
    probe = await log.acquire("s-2", "probe", ttl=0.0)  # free: the older server took nothing
    assert probe is not None
    clock.advance(GRACE)
    assert (await old.drive("s-2")).status == SagaStatus.FAILED_NEEDS_ATTENTION


class ProgressBeforeAcquire(InMemorySagaLog):
    """Another worker drives the saga (appends an event) just before this one's `acquire`."""

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        await self.append(saga_id, [SagaEvent(EventKind.ATTEMPT, at=utc_now())], status="sending")
        return await super().acquire(saga_id, owner, ttl=ttl)


@pytest.mark.parametrize("how", ["drive", "sweep"])
async def test_a_saga_that_progressed_while_its_lease_was_taken_to_park_it_is_given_back(
    clock: Clock, how: str
) -> None:
    """Overdue when read, but another worker wrote before the lease was taken: judged again on
    what it wrote, the saga is not parked, and the lease taken for nothing is released."""
    log = ProgressBeforeAcquire(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(GRACE + TTL)
    old = older(log, Carrier())
    if how == "drive":
        assert (await old.drive("s-2")).status == "sending"
    else:
        assert await old.sweep() == []
    stored = await log.load("s-2")
    assert stored is not None
    assert stored.events[-1].kind is EventKind.ATTEMPT  # not parked
    assert await InMemorySagaLog.acquire(log, "s-2", "probe", ttl=TTL) is not None  # released


async def test_recover_never_claims_a_saga_it_cannot_drive_and_parks_it_once_stranded(
    clock: Clock,
) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(TTL)
    old = older(log, Carrier())
    assert await old.recover() == {}
    assert await old.recover(take_over=True) == {}
    assert await old.unresumable(["s-2"]) == {"s-2": "saga type 'ship' version 2"}
    clock.advance(GRACE)
    assert await old.recover() == {SagaStatus.FAILED_NEEDS_ATTENTION: 1}


async def test_sagabank_recover_reports_such_a_saga_as_left_for_another_server_without_waiting(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    await newer(log, Carrier(), "newer-2").run("ship", {"parcel": "p-3"}, saga_id="s-3")
    clock.advance(TTL)

    async def no_wait(seconds: float) -> None:
        raise AssertionError(f"recover waited {seconds}s for a saga it cannot drive")

    monkeypatch.setattr(recover_cli.asyncio, "sleep", no_wait)
    done = await recover_cli.recover_all(older(log, Carrier()), wait=3600.0, take_over=False)
    assert done == recover_cli.Recovered({}, [], {"s-2": "saga type 'ship' version 2"})
