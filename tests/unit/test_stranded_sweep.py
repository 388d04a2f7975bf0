"""The sweep (`service_layer.stranded`) on the fleet of test_rolling_upgrade.py: it parks at most
a batch per pass, longest idle first; the worker loop runs it once per lease ttl, so a stranded
saga parks within about a ttl after the grace; two sweepers park a saga once; a saga of another
shape under a version this server registers is stranded like one of a version it lacks (never
claimed here, parked after the grace, not at once). And the fallback for a log that ignored
the claim filter: the driver still leaves such a saga unrenewed instead of driving it."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Collection
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaStatus
from repository_after.service_layer import worker as worker_module
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_ports import DefinitionKey, Lease
from repository_after.service_layer.transitions import LOGGER_NAME
from tests.fakes import SimulatedCrash
from tests.unit.test_definition_versions import POLICY, SHIP_V1, Carrier, registry, server, ship
from tests.unit.test_rolling_upgrade import GRACE, TTL, Clock, dies_before_its_send, older

# The fleet's stepped clock (a fixture), used under its own name.
from tests.unit.test_rolling_upgrade import clock as clock

PARKED = SagaStatus.FAILED_NEEDS_ATTENTION


def older_with_batch(log: InMemorySagaLog, batch: int) -> Orchestrator:
    types = registry(SHIP_V1)
    return Orchestrator(
        log=log,
        participant=Carrier(),
        definitions=types.definitions(),
        versions=types,
        forward=POLICY,
        settle=POLICY,
        observers=(),
        worker_id="older",
        lease_ttl=TTL,
        sweep_batch=batch,
    )


async def three_stranded(log: InMemorySagaLog, clock: Clock) -> None:
    """s-1, s-2, s-3 of version 2, their servers dead one after the other, 1 s apart."""
    for saga_id in ("s-1", "s-2", "s-3"):
        await dies_before_its_send(log, f"newer-{saga_id}", saga_id)
        clock.advance(1.0)


async def test_one_pass_parks_at_most_a_batch_longest_idle_first(clock: Clock) -> None:
    log = InMemorySagaLog(clock=clock)
    await three_stranded(log, clock)
    clock.advance(GRACE)
    old = older_with_batch(log, 2)
    assert await old.sweep() == ["s-1", "s-2"]
    assert await old.sweep() == ["s-3"]
    assert await old.sweep() == []
    assert await log.count_by_status() == {PARKED: 3}


async def test_recover_sweeps_pass_after_pass_until_none_is_left(clock: Clock) -> None:
    log = InMemorySagaLog(clock=clock)
    await three_stranded(log, clock)
    clock.advance(GRACE)
    assert await older_with_batch(log, 1).recover() == {PARKED: 3}
    assert await log.count_by_status() == {PARKED: 3}


async def test_the_worker_loop_sweeps_once_per_lease_ttl(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds every ttl / 2: a sweep every second round, the first round's included; the saga,
    stranded since its server died, parks at the first sweep past the grace (110 s idle)."""
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(TTL)  # its lease lapses
    sweeps: list[float] = []
    stranded = log.stranded

    async def counted(
        *, drivable: Collection[DefinitionKey], idle_before: str, limit: int
    ) -> list[str]:
        sweeps.append(clock.now)
        return await stranded(drivable=drivable, idle_before=idle_before, limit=limit)

    monkeypatch.setattr(log, "stranded", counted)
    rounds = 0

    async def next_round(seconds: float) -> None:
        nonlocal rounds
        assert seconds == TTL / 2
        rounds += 1
        if rounds == 24:
            raise asyncio.CancelledError
        clock.advance(seconds)

    monkeypatch.setattr(worker_module.asyncio, "sleep", next_round)
    old = older(log, Carrier())
    with pytest.raises(asyncio.CancelledError):
        await old.work(interval=TTL / 2)
    assert len(sweeps) == 12
    assert all(b - a == TTL for a, b in itertools.pairwise(sweeps))
    stored = await log.load("s-2")
    assert stored is not None
    assert stored.status == PARKED
    assert "made no progress for 110s" in (stored.events[-1].note or "")


async def test_two_workers_sweeping_at_once_park_a_saga_once(clock: Clock) -> None:
    log = InMemorySagaLog(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(GRACE + TTL)
    one = server(log, Carrier(), registry(SHIP_V1), worker_id="older-1")
    two = server(log, Carrier(), registry(SHIP_V1), worker_id="older-2")
    # Each reports it parked (it is, once the pass is done); one `parked` event was written.
    assert await asyncio.gather(one.sweep(), two.sweep()) == [["s-2"], ["s-2"]]
    stored = await log.load("s-2")
    assert stored is not None
    assert [e.kind for e in stored.events].count(EventKind.PARKED) == 1


async def test_a_saga_of_another_shape_is_never_claimed_here_and_parked_only_after_the_grace(
    clock: Clock,
) -> None:
    """Another server defines version 1 with another shape (a deployment error) and died: this
    server's claims pass the saga by, as they pass a version it lacks; the sweep parks it once
    it is stranded, naming both shapes; the server with its shape would have finished it."""
    log = InMemorySagaLog(clock=clock)
    post = ship(1, "send_by_post")
    other = server(log, Carrier(crash_on="send_by_post"), registry(post), worker_id="other")
    with pytest.raises(SimulatedCrash):
        await other.run("ship", {"parcel": "p-1"}, saga_id="s-1")
    clock.advance(TTL)
    here = older(log, Carrier())
    assert await here.claim() == []
    assert await here.sweep() == []
    clock.advance(GRACE)
    assert await here.sweep() == ["s-1"]
    stored = await log.load("s-1")
    assert stored is not None
    assert stored.events[-1].note == (
        f"saga type 'ship' version 1 started under shape {post.shape_hash()}, this server "
        f"defines {SHIP_V1.shape_hash()} (worker older): retry it on a server that registers "
        "that version unchanged"
    )


class IgnoresTheFilter(InMemorySagaLog):
    """A log that breaks the claim contract: it claims every saga, whatever `drivable` says."""

    async def claim(self, owner: str, **kwargs: Any) -> list[Lease]:
        kwargs["drivable"] = None
        return await super().claim(owner, **kwargs)


async def test_handed_a_saga_it_cannot_drive_a_worker_leaves_it_unrenewed_to_lapse(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The driver's own check stays behind the claim filter: nothing is called, the lease is
    neither renewed nor released (no claim-and-drop loop), and one warning says so."""
    log = IgnoresTheFilter(clock=clock)
    await dies_before_its_send(log, "newer-1")
    clock.advance(TTL)
    carrier = Carrier()
    old = older(log, carrier)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert await old.claim() == ["s-2"]
        assert (await old.drive("s-2")).status == "sending"
        assert await old.claim() == []  # not released: not taken back before the ttl
    assert carrier.calls == []
    assert [r.getMessage() for r in caplog.records if "left for a server" in r.getMessage()] == [
        "saga s-2: saga type 'ship' version 2 is not registered on this server (worker older): "
        "left for a server that registers it; parked if it makes no progress for 100s (its last "
        "event is 10s old)"
    ]
    assert await log.claim("someone", limit=10, ttl=TTL) == []
    clock.advance(TTL)
    assert [x.saga_id for x in await log.claim("someone", limit=10, ttl=TTL)] == ["s-2"]


async def test_the_sweep_leaves_the_sagas_this_server_can_drive_to_its_claims(
    clock: Clock,
) -> None:
    """Idle and free past the grace, but of a version this server registers: not the sweep's
    (it would drive it inside the sweep, past `max_sagas`); the next claim takes it."""
    log = InMemorySagaLog(clock=clock)
    dying = server(log, Carrier(crash_on="send"), registry(SHIP_V1), worker_id="dying")
    with pytest.raises(SimulatedCrash):
        await dying.run("ship", {"parcel": "p-1"}, saga_id="s-1")
    clock.advance(GRACE + TTL)
    carrier = Carrier()
    here = server(log, carrier, registry(SHIP_V1), worker_id="here")
    assert await here.sweep() == []
    assert carrier.calls == []
    assert await here.claim() == ["s-1"]
    assert (await here.drive("s-1")).status == SagaStatus.COMPLETED
