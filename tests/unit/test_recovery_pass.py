"""A recovery pass reaches every saga it can drive, however many it must leave on the way.

`Worker.recover` claims in batches of at most `max_sagas`. Claims take only the sagas this
server can drive (`drivable`: a version it lacks is never claimed, the first two tests). A saga a
pass drove and left unsettled all the same (lost to another worker; or claimed by a log that
ignores `drivable`, the fallback the driver keeps, as `IgnoresExclude` does here) stays leased
under this worker's id, unrenewed; its own recovery claims (`include_own`) and a take-over would
hand it back in the next batch, and a batch of nothing but those once ended the pass, leaving
sagas it could drive behind. Now a pass never claims a saga it has already driven (`exclude`):
each is taken once, and the pass ends when a claim finds nothing new.

Against every saga-log backend (memory, SQLite, PostgreSQL: `saga_log` in tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import SagaStatus
from repository_after.service_layer.saga_ports import Lease, SagaLog
from repository_after.service_layer.saga_types import SagaTypes
from tests.fakes import SimulatedCrash
from tests.unit.test_definition_versions import SHIP_V1, SHIP_V2, Carrier, registry, server

NEWER, OLDER = registry(SHIP_V1, SHIP_V2), registry(SHIP_V1)


async def left_by_a_crash(log: SagaLog, types: SagaTypes, saga_id: str) -> None:
    """A server with `types` starts the saga on its latest version and dies before the send."""
    send = types.definitions()["ship"].steps[-1].action
    dying = server(log, Carrier(crash_on=send), types, worker_id="dead")
    await dying.start("ship", {"parcel": saga_id}, saga_id=saga_id)
    with pytest.raises(SimulatedCrash):
        await dying.drive(saga_id)


async def leases_lapse(log: SagaLog) -> None:
    """The dead server's leases run out (re-leased for 0 s: expired at once; fence 2)."""
    assert await log.claim("dead", limit=10, ttl=0.0, take_over=True)


@pytest.mark.parametrize("take_over", [False, True])
async def test_a_batch_of_sagas_left_for_another_server_does_not_end_the_pass(
    saga_log: SagaLog, take_over: bool
) -> None:
    # Oldest first: the two sagas of version 2 fill the first batch of two.
    for saga_id in ("v2-a", "v2-b"):
        await left_by_a_crash(saga_log, NEWER, saga_id)
    await left_by_a_crash(saga_log, OLDER, "v1-c")
    await leases_lapse(saga_log)
    carrier = Carrier()
    older = server(saga_log, carrier, OLDER, worker_id="older", max_sagas=2)

    assert await older.recover(take_over=take_over) == {SagaStatus.COMPLETED: 1}
    assert carrier.calls == [("carrier", "send")]  # v1-c's send, resent once
    done = await saga_log.summary("v1-c")
    assert done is not None
    assert done.status == SagaStatus.COMPLETED
    # The sagas of version 2 were never claimed in the pass (fence 2; the probe's is 3), so
    # never taken from a server that has their version.
    probe = await saga_log.claim("probe", limit=10, ttl=0.0, take_over=True)
    assert {lease.saga_id: lease.fence for lease in probe} == {"v2-a": 3, "v2-b": 3}


async def test_a_pass_over_nothing_but_sagas_it_cannot_drive_visits_each_once_and_ends(
    saga_log: SagaLog,
) -> None:
    for saga_id in ("v2-a", "v2-b", "v2-c"):
        await left_by_a_crash(saga_log, NEWER, saga_id)
    await leases_lapse(saga_log)
    older = server(saga_log, Carrier(), OLDER, worker_id="older", max_sagas=1)

    assert await older.recover(take_over=True) == {}
    probe = await saga_log.claim("probe", limit=10, ttl=0.0, take_over=True)
    assert {lease.saga_id: lease.fence for lease in probe} == {"v2-a": 3, "v2-b": 3, "v2-c": 3}


class IgnoresExclude(InMemorySagaLog):
    """A log that breaks `claim`'s contract: it hands back the sagas the pass excluded, and
    sagas of versions the claimer cannot drive (it ignores `drivable`). It refuses to be claimed
    from more than `bound` times, so a pass that would not end fails."""

    def __init__(self, bound: int = 20) -> None:
        super().__init__()
        self.claims, self.bound = 0, bound

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        ttl: float,
        include_own: bool = False,
        take_over: bool = False,
        drivable: Collection[Any] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Lease]:
        self.claims += 1
        assert self.claims <= self.bound, "the recovery pass does not end"
        return await super().claim(
            owner, limit=limit, ttl=ttl, include_own=include_own, take_over=take_over
        )


@pytest.mark.parametrize("take_over", [False, True])
async def test_a_pass_ends_and_drives_each_saga_once_even_if_the_log_ignores_exclude(
    take_over: bool,
) -> None:
    log = IgnoresExclude()
    for saga_id in ("v2-a", "v2-b"):
        await left_by_a_crash(log, NEWER, saga_id)
    await leases_lapse(log)
    log.claims = 0  # the pass's claims from here
    older = server(log, Carrier(), OLDER, worker_id="older", max_sagas=2)
    assert await older.recover(take_over=take_over) == {"sending": 2}
    assert log.claims == 2  # the batch, then one that brought back only what it had left


class UnsettlesOnce(InMemorySagaLog):
    """Between the pass's first and second claims, a saga it completed is made unsettled
    again (as an operator's write would), and is free: the second claim brings it back."""

    def __init__(self, saga_id: str) -> None:
        super().__init__()
        self.saga_id, self.claims = saga_id, 0

    async def claim(self, owner: str, **kwargs: Any) -> list[Lease]:
        self.claims += 1
        if self.claims == 2:
            summary = await self.summary(self.saga_id)
            assert summary is not None
            assert summary.status == SagaStatus.COMPLETED
            await self.append(self.saga_id, [], status="sending")
        return await super().claim(owner, **kwargs)


async def test_a_saga_the_pass_settled_is_not_driven_twice_in_it() -> None:
    log = UnsettlesOnce("v1-c")
    await left_by_a_crash(log, OLDER, "v1-c")
    await leases_lapse(log)
    log.claims = 0  # the pass's claims from here
    carrier = Carrier()
    older = server(log, carrier, OLDER, worker_id="older")
    assert await older.recover() == {SagaStatus.COMPLETED: 1}
    assert carrier.calls == [("carrier", "send")]
    # Brought back by the second claim, it was left to the worker loop and excluded from the
    # third, which found nothing: the pass ended.
    assert log.claims == 3


class IgnoresDrivable(InMemorySagaLog):
    """A log whose claims hand out sagas of any version (as one from before claims filtered
    by version would): the driver's fallback leaves those unsettled, still leased to it."""

    async def claim(self, owner: str, **kwargs: Any) -> list[Lease]:
        kwargs["drivable"] = None
        return await super().claim(owner, **kwargs)


@pytest.mark.parametrize("take_over", [False, True])
async def test_a_batch_of_sagas_it_left_unsettled_does_not_crowd_out_the_rest(
    take_over: bool,
) -> None:
    log = IgnoresDrivable()
    for saga_id in ("v2-a", "v2-b"):  # oldest first: they fill the first batch of two
        await left_by_a_crash(log, NEWER, saga_id)
    await left_by_a_crash(log, OLDER, "v1-c")
    await leases_lapse(log)
    carrier = Carrier()
    older = server(log, carrier, OLDER, worker_id="older", max_sagas=2)
    assert await older.recover(take_over=take_over) == {"sending": 2, SagaStatus.COMPLETED: 1}
    assert carrier.calls == [("carrier", "send")]
