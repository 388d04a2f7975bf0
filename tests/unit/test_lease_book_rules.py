"""Every rule of `LeaseBook`, the leases one worker holds, on a clock the test steps.

The book decides whether a worker may still call and write for a saga (`current`), which lease of
a saga it keeps when grants end out of order (`_hold`), and which sagas it has lost (`renew`).
A wrong answer lets a paused worker act on a saga another worker drives (money moved twice) or
makes a worker drop sagas it holds. The book's clock is `time.monotonic` in its module; the test
replaces it with one it steps by hand, so expiry is exact and nothing sleeps. The log is the
memory fake with a record of the calls the book made (which owner, ttl, limit, flags).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer import leases
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.saga_ports import DefinitionKey, Lease, LeaseLost

START = SagaEvent(EventKind.STARTED, at="2026-12-04T00:00:00.000000Z")
TTL = 60.0
TRANSFER_ONLY = frozenset({DefinitionKey("transfer", 1, TRANSFER.shape_hash())})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(leases, "time", SimpleNamespace(monotonic=clock.monotonic))
    return clock


class RecordingLog(InMemorySagaLog):
    """The memory log, with the calls the book made."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.release_error: Exception | None = None

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        self.calls.append(("acquire", saga_id, owner, ttl))
        return await super().acquire(saga_id, owner, ttl=ttl)

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        ttl: float,
        drivable: Collection[DefinitionKey] | None = None,
        include_own: bool = False,
        take_over: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Lease]:
        self.calls.append(
            ("claim", owner, limit, ttl, include_own, take_over, drivable, set(exclude))
        )
        return await super().claim(
            owner,
            limit=limit,
            ttl=ttl,
            drivable=drivable,
            include_own=include_own,
            take_over=take_over,
            exclude=exclude,
        )

    async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
        self.calls.append(("renew", tuple(leases), ttl))
        return await super().renew(leases, ttl=ttl)

    async def release(self, leases: Sequence[Lease]) -> None:
        self.calls.append(("release", tuple(leases)))
        if self.release_error is not None:
            raise self.release_error
        await super().release(leases)

    def renewals(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == "renew"]


async def new_saga(log: InMemorySagaLog, saga_id: str, *, owner: str = "x", ttl: float = 0.0):
    lease = await log.create(
        saga_id=saga_id,
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
        owner=owner,
        ttl=ttl,
    )
    assert lease is not None
    return lease


async def given(lease: Lease) -> Lease:
    return lease


# -- taking leases -------------------------------------------------------------------------


async def test_acquire_leases_under_the_book_s_owner_and_ttl(clock: Clock) -> None:
    log = RecordingLog()
    await new_saga(log, "s1")
    book = LeaseBook(log, owner="w1", ttl=TTL)
    lease = await book.acquire("s1")
    assert lease == Lease("s1", "w1", 2)
    assert log.calls == [("acquire", "s1", "w1", TTL)]
    assert "s1" in book
    assert len(book) == 1
    assert book.held("s1") == lease
    assert await book.acquire("s1") is None  # held: the log refuses, the book keeps its lease
    assert book.held("s1") == lease


async def test_take_records_only_a_lease_the_log_granted(clock: Clock) -> None:
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)

    async def refused() -> Lease | None:
        return None

    assert await book.take(refused) is None
    assert len(book) == 0
    assert "s1" not in book
    assert book.held("s1") is None


async def test_claim_passes_its_limit_and_flags_and_holds_what_it_got(clock: Clock) -> None:
    log = RecordingLog()
    for saga_id in ("a", "b", "c"):
        await new_saga(log, saga_id)  # free at once
    await new_saga(log, "mine", owner="w1", ttl=TTL)  # still leased under this worker's id
    await new_saga(log, "theirs", owner="w2", ttl=TTL)  # leased to a live worker
    book = LeaseBook(log, owner="w1", ttl=TTL)

    first = await book.claim(limit=2, include_own=False)
    assert len(first) == 2
    rest = await book.claim(limit=10, include_own=True)
    taken = await book.claim(
        limit=10, include_own=False, take_over=True, drivable=TRANSFER_ONLY, exclude=["b"]
    )
    assert log.calls == [
        ("claim", "w1", 2, TTL, False, False, None, set()),
        ("claim", "w1", 10, TTL, True, False, None, set()),
        ("claim", "w1", 10, TTL, False, True, TRANSFER_ONLY, {"b"}),
    ]
    assert {x.saga_id for x in first + rest} == {"a", "b", "c", "mine"}
    # take_over takes every unsettled saga, its own ones again (their fences move on) included,
    # but those excluded.
    assert sorted(x.saga_id for x in taken) == ["a", "c", "mine", "theirs"]
    assert all(x.owner == "w1" for x in first + rest + taken)
    assert len(book) == 5
    assert all(book.held(x.saga_id) == x for x in taken)


# -- when a lease must be renewed before acting --------------------------------------------


@pytest.mark.parametrize("how", ["take", "acquire", "claim"])
async def test_a_lease_is_used_unrenewed_until_its_ttl_and_renewed_from_then_on(
    clock: Clock, how: str
) -> None:
    """`until` is the time the grant was asked for plus the ttl (it errs short): before it the
    worker acts at once; AT it the lease counts as lapsed and is renewed first."""
    log = RecordingLog()
    created = await new_saga(log, "s1", owner="w1", ttl=0.0)
    book = LeaseBook(log, owner="w1", ttl=TTL)
    if how == "take":
        lease = await book.take(lambda: given(created))
    elif how == "acquire":
        lease = await book.acquire("s1")
    else:
        (lease,) = await book.claim(limit=1, include_own=False)
    assert lease is not None
    clock.now += TTL - 0.001
    assert await book.current("s1") == lease
    assert log.renewals() == []
    clock.now += 0.001  # exactly `until`
    assert await book.current("s1") == lease
    assert log.renewals() == [("renew", (lease,), TTL)]
    clock.now += TTL - 0.001  # the renewal counts from its own start
    assert await book.current("s1") == lease
    assert len(log.renewals()) == 1


async def test_a_lapsed_lease_taken_over_is_refused_and_dropped(clock: Clock) -> None:
    log = RecordingLog()
    created = await new_saga(log, "s1", owner="w1", ttl=0.0)
    book = LeaseBook(log, owner="w1", ttl=TTL)
    await book.take(lambda: given(created))
    await log.claim("w2", limit=1, ttl=TTL)  # another worker takes the lapsed lease
    clock.now += TTL
    with pytest.raises(LeaseLost) as lost:
        await book.current("s1")
    assert str(lost.value) == "saga s1: lease 1 lapsed and was taken over"
    assert "s1" not in book
    with pytest.raises(LeaseLost) as gone:
        await book.current("s1")
    assert str(gone.value) == "saga s1: no lease held by w1"


async def test_current_refuses_a_lease_another_worker_held_in_between(clock: Clock) -> None:
    """The caller's view was built under `expected`; the book may hold `expected` itself or its
    direct successor (this worker re-leased the saga, nobody else wrote), never a later one."""
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    held = Lease("s1", "w1", 3)
    await book.take(lambda: given(held))
    assert await book.current("s1", held) == held
    assert await book.current("s1", Lease("s1", "w1", 2)) == held  # direct successor
    with pytest.raises(LeaseLost) as refused:
        await book.current("s1", Lease("s1", "w1", 1))
    assert str(refused.value) == "saga s1: held by another worker between leases 1 and 3"
    assert book.held("s1") == held  # refusing the view does not drop the lease
    assert log.calls == []


async def test_successor_is_only_the_next_fence(clock: Clock) -> None:
    book = LeaseBook(RecordingLog(), owner="w1", ttl=TTL)
    held = Lease("s1", "w1", 3)
    await book.take(lambda: given(held))
    assert book.successor("s1", Lease("s1", "w1", 2)) == held
    assert book.successor("s1", Lease("s1", "w1", 1)) is None
    assert book.successor("s1", Lease("s1", "w1", 3)) is None
    assert book.successor("other", Lease("other", "w1", 2)) is None


# -- which of two leases of one saga the book keeps ----------------------------------------


async def test_the_book_keeps_the_higher_fence_and_refreshes_the_same_one(clock: Clock) -> None:
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    newer, older = Lease("s1", "w1", 5), Lease("s1", "w1", 4)
    await book.take(lambda: given(newer))
    await book.take(lambda: given(older))
    assert book.held("s1") == newer
    clock.now += TTL / 2
    await book.take(lambda: given(newer))  # the same grant again: its time is refreshed
    clock.now += TTL / 2
    assert await book.current("s1") == newer
    assert log.renewals() == []


async def test_forget_drops_the_saga_unless_a_newer_lease_is_held(clock: Clock) -> None:
    book = LeaseBook(RecordingLog(), owner="w1", ttl=TTL)
    for saga_id in ("a", "b", "c"):
        await book.take(lambda saga_id=saga_id: given(Lease(saga_id, "w1", 2)))
    book.forget("a")
    book.forget("b", Lease("b", "w1", 1))  # a stale lease refused: the newer one stays
    book.forget("c", Lease("c", "w1", 2))
    book.forget("never-held")
    assert ("a" in book, "b" in book, "c" in book) == (False, True, False)
    assert book.held("b") == Lease("b", "w1", 2)
    assert len(book) == 1


# -- renewing every lease ------------------------------------------------------------------


async def test_renew_extends_the_held_leases_and_drops_and_reports_the_lost(clock: Clock) -> None:
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    kept = await book.take(lambda: new_saga(log, "kept", owner="w1", ttl=TTL))
    lost = await book.take(lambda: new_saga(log, "lost", owner="w1", ttl=0.0))
    await log.claim("w2", limit=10, ttl=TTL)  # takes "lost" only: its lease lapsed in the log
    log.calls.clear()
    clock.now += TTL / 2
    assert await book.renew() == ["lost"]
    assert log.calls == [("renew", (kept, lost), TTL)]
    assert ("kept" in book, "lost" in book) == (True, False)
    assert book.held("kept") == kept
    clock.now += TTL - 0.001  # the renewal counts from its own start: no renewal needed yet
    assert await book.current("kept") == kept
    assert len(log.renewals()) == 1


async def test_renew_skips_leases_released_or_retaken_while_it_waited(clock: Clock) -> None:
    """`renew` answers for the leases it sent; one released meanwhile must not come back, one
    re-taken meanwhile (a newer fence) must not be replaced by the old one, and the leases after
    them are still handled."""
    entered, go_on = asyncio.Event(), asyncio.Event()

    class GatedLog(RecordingLog):
        async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
            kept = await super().renew(leases, ttl=ttl)
            entered.set()
            await go_on.wait()
            return kept

    log = GatedLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    await book.take(lambda: new_saga(log, "released", owner="w1", ttl=TTL))
    retaken = await book.take(lambda: new_saga(log, "retaken", owner="w1", ttl=TTL))
    await book.take(lambda: new_saga(log, "lost", owner="w1", ttl=0.0))
    await log.claim("w2", limit=10, ttl=TTL)  # takes "lost" only
    renewing = asyncio.ensure_future(book.renew())
    await entered.wait()
    await book.release("released")
    assert retaken is not None
    newer = Lease("retaken", "w1", retaken.fence + 1)
    await book.take(lambda: given(newer))
    go_on.set()
    assert await renewing == ["lost"]
    assert ("released" in book, "lost" in book) == (False, False)
    assert book.held("retaken") == newer


async def test_renewing_nothing_asks_the_log_nothing(clock: Clock) -> None:
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    assert await book.renew() == []
    assert log.calls == []


# -- giving leases up ----------------------------------------------------------------------


async def test_release_gives_the_saga_up_in_the_log_at_once(clock: Clock) -> None:
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    lease = await book.take(lambda: new_saga(log, "s1", owner="w1", ttl=TTL))
    await book.release("s1")
    assert log.calls == [("release", (lease,))]
    assert "s1" not in book
    assert await log.acquire("s1", "w2", ttl=TTL) is not None  # free at once
    log.calls.clear()
    await book.release("s1")  # not held any more: nothing to give up
    assert log.calls == []


async def test_release_all_hands_every_saga_over_in_one_call(clock: Clock) -> None:
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    a = await book.take(lambda: new_saga(log, "a", owner="w1", ttl=TTL))
    b = await book.take(lambda: new_saga(log, "b", owner="w1", ttl=TTL))
    await book.release_all()
    assert log.calls == [("release", (a, b))]
    assert len(book) == 0
    assert [x.saga_id for x in await log.claim("w2", limit=10, ttl=TTL)] == ["a", "b"]
    log.calls.clear()
    await book.release_all()
    assert log.calls == []


async def test_release_all_is_best_effort_and_says_what_it_could_not_release(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """At shutdown a failing log must not stop the shutdown: the leases expire anyway."""
    log = RecordingLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    for saga_id in ("a", "b"):
        await book.take(lambda saga_id=saga_id: new_saga(log, saga_id, owner="w1", ttl=TTL))
    log.release_error = RuntimeError("database gone")
    with caplog.at_level(logging.WARNING, logger=leases.__name__):
        await book.release_all()
    assert len(book) == 0
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "could not release 2 lease(s): database gone")
    ]


async def test_a_refused_renewal_does_not_drop_a_newer_lease_taken_meanwhile(clock: Clock) -> None:
    """`current` renews a lapsed lease; while the log answers, this worker's start-up claim
    re-leases the saga (a newer fence), so the old lease is refused. The refusal is the old
    lease's: the newer one, the one the log honours, stays in the book."""
    asked, go_on = asyncio.Event(), asyncio.Event()

    class GatedLog(RecordingLog):
        async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
            asked.set()
            await go_on.wait()  # the claim below runs first, so the old fence no longer holds
            return await super().renew(leases, ttl=ttl)

    log = GatedLog()
    book = LeaseBook(log, owner="w1", ttl=TTL)
    old = await book.take(lambda: new_saga(log, "s1", owner="w1", ttl=TTL))
    clock.now += TTL  # lapsed: `current` renews first
    current = asyncio.ensure_future(book.current("s1"))
    await asyncio.wait_for(asked.wait(), timeout=10)
    [newer] = await book.claim(limit=10, include_own=True)
    go_on.set()
    with pytest.raises(LeaseLost, match=r"^saga s1: lease 1 lapsed and was taken over$"):
        await current
    assert old is not None
    assert newer.fence == old.fence + 1
    assert book.held("s1") == newer
