"""The lease part of the SagaLog contract, on every backend (memory, SQLite, PostgreSQL, MariaDB).

`twin` is a second log instance on the same storage (another process's connection pool), so the
exclusivity tests exercise the database's locking, not one object's. A ttl of 0 makes a lease
that has already expired by the next statement: expiry without sleeping. The lease clock is the
database's, so a stepped process clock (patched `time.time`) must change nothing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import build_saga_log
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.saga_ports import DefinitionKey, Lease, LeaseLost, SagaLog
from tests import mariadb, pg
from tests.conftest import BACKENDS

AT = "2026-01-01T00:00:00+00:00"
START = SagaEvent(EventKind.STARTED, at=AT)
NOTE = SagaEvent(EventKind.OPERATOR_RETRY, at=AT, note="x")
LONG = 60.0


@pytest.fixture(params=BACKENDS)
async def logs(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SagaLog, SagaLog]]:
    """Two saga-log instances sharing one storage."""
    if request.param == "memory":
        log = build_saga_log("memory://")
        yield log, log
        return
    if request.param == "sqlite":
        pair: tuple[SagaLog, SagaLog] = (
            SqliteSagaLog(tmp_path / "s.db"),
            SqliteSagaLog(tmp_path / "s.db"),
        )
        yield pair
    else:
        fresh = pg.fresh_database if request.param == "postgres" else mariadb.fresh_database
        with fresh() as url:
            pair = (build_saga_log(url), build_saga_log(url))
            yield pair
            for log in pair:
                await log.close()
        return
    for log in pair:
        await log.close()


async def make(
    log: SagaLog, saga_id: str, *, owner: str = "a", ttl: float = LONG, at: str = AT
) -> Lease:
    lease = await log.create(
        saga_id=saga_id,
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[SagaEvent(EventKind.STARTED, at=at)],
        owner=owner,
        ttl=ttl,
    )
    assert lease is not None
    return lease


async def test_create_leases_the_new_saga_to_its_creator(logs) -> None:
    log, _ = logs
    lease = await make(log, "s1", owner="w1")
    assert (lease.saga_id, lease.owner) == ("s1", "w1")
    assert (
        await log.create(
            saga_id="s1",
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={},
            events=[START],
        )
        is None
    )


async def test_a_saga_created_without_an_owner_is_claimable_at_once(logs) -> None:
    """The defaults (`owner=""`, `ttl=0`) create a saga nobody holds: a test or a single-writer
    tool that creates one must not strand it behind a lease until some ttl passes."""
    log, twin = logs
    assert await log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
    ) == Lease("s1", "", 1)
    assert await twin.claim("b", limit=10, ttl=LONG) == [Lease("s1", "b", 2)]


async def make_at(log: SagaLog, saga_id: str, second: int, *, ttl: float) -> None:
    """A saga created at 00:00:`second` (its first event's time is its `created_at`)."""
    started = SagaEvent(EventKind.STARTED, at=f"2026-01-01T00:00:{second:02d}+00:00")
    lease = await log.create(
        saga_id=saga_id,
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[started],
        owner="a",
        ttl=ttl,
    )
    assert lease is not None


async def test_claim_takes_only_unsettled_sagas_with_no_live_lease_oldest_first(logs) -> None:
    """Oldest first means which sagas a claim with a limit takes: the oldest claimable ones. The
    sagas are created in an order unlike their age (newest first), so neither insertion order nor
    a reversed ORDER BY passes. Two sagas share a timestamp: SQL orders ties arbitrarily, so
    they are compared as a set; so is the list one claim returns (UPDATE … RETURNING gives its
    rows in no promised order), hence one claim per age step with the limit set to its size."""
    log, twin = logs
    await make_at(log, "newest", 4, ttl=0)
    await make_at(log, "live", 0, ttl=LONG)  # older than all, but its lease holds
    await make_at(log, "tie-a", 2, ttl=0)
    await make_at(log, "settled", 0, ttl=0)  # older than all, but at rest
    await log.append("settled", [NOTE], status="completed")
    await make_at(log, "oldest", 1, ttl=0)
    await make_at(log, "tie-b", 2, ttl=0)
    rounds = [await twin.claim("b", limit=n, ttl=LONG) for n in (1, 2, 10)]
    assert [{c.saga_id for c in claimed} for claimed in rounds] == [
        {"oldest"},
        {"tie-a", "tie-b"},
        {"newest"},
    ]
    assert all(c.owner == "b" for claimed in rounds for c in claimed)
    assert await twin.claim("c", limit=10, ttl=LONG) == []


async def test_claim_respects_the_limit(logs) -> None:
    log, _ = logs
    for i in range(5):
        await make(log, f"s{i}", ttl=0)
    assert len(await log.claim("b", limit=2, ttl=LONG)) == 2
    assert len(await log.claim("c", limit=10, ttl=LONG)) == 3


async def test_concurrent_claimers_never_get_the_same_saga(logs) -> None:
    log, twin = logs
    for i in range(40):
        await make(log, f"s{i:02d}", ttl=0)
    rounds = [
        await asyncio.gather(log.claim("x", limit=7, ttl=LONG), twin.claim("y", limit=7, ttl=LONG))
        for _ in range(4)
    ]
    ids = [lease.saga_id for pair in rounds for batch in pair for lease in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_concurrent_acquirers_of_one_saga_never_both_get_it(logs) -> None:
    """Each of 150 lapsed sagas is acquired by both instances at once: one gets the lease, the
    other None (on a server: one waits on the row, then finds it leased). Two holders of one
    lease would both drive the saga."""
    log, twin = logs
    sagas = 150  # enough pairs that an acquire without its row lock loses one in every run
    for i in range(sagas):
        await make(log, f"s{i:03d}", ttl=0)
    answers = await asyncio.gather(
        *(
            taker.acquire(f"s{i:03d}", name, ttl=LONG)
            for i in range(sagas)
            for taker, name in ((log, "x"), (twin, "y"))
        )
    )
    per_saga = [answers[2 * i : 2 * i + 2] for i in range(sagas)]
    assert [sum(lease is not None for lease in pair) for pair in per_saga] == [1] * sagas


async def test_include_own_reclaims_sagas_still_leased_under_the_same_name(logs) -> None:
    log, twin = logs
    old = await make(log, "s1", owner="w1", ttl=LONG)
    assert await twin.claim("w1", limit=10, ttl=LONG) == []
    (again,) = await twin.claim("w1", limit=10, ttl=LONG, include_own=True)
    assert again.fence > old.fence
    with pytest.raises(LeaseLost):
        await log.append("s1", [NOTE], status="started", lease=old)


async def test_a_claim_never_takes_an_excluded_saga_whatever_its_lease(logs) -> None:
    log, twin = logs
    await make(log, "free", ttl=0.0)
    await make(log, "own", owner="w1")
    await make(log, "other's", owner="w2")
    await make(log, "kept", ttl=0.0, at="2026-01-01T00:00:01+00:00")  # the newest
    passed = {"free", "own", "other's"}
    # The limit goes to the sagas not excluded, however many older ones are.
    assert await twin.claim("w1", limit=1, ttl=LONG, include_own=True, exclude=passed) == [
        Lease("kept", "w1", 2)
    ]
    assert await twin.claim("w1", limit=1, ttl=LONG, take_over=True, exclude=passed) == [
        Lease("kept", "w1", 3)
    ]
    assert (
        await twin.claim("w1", limit=10, ttl=LONG, take_over=True, exclude=[*passed, "kept"]) == []
    )
    taken = await twin.claim("w1", limit=10, ttl=LONG, take_over=True, exclude={"kept"})
    assert {lease.saga_id for lease in taken} == passed


async def test_take_over_claims_live_leases_and_fences_the_old_holder_out(logs) -> None:
    log, twin = logs
    zombie = await make(log, "s1", owner="w1", ttl=LONG)
    await make(log, "settled", owner="w1", ttl=LONG)
    await log.append("settled", [NOTE], status="completed")
    assert await twin.claim("op", limit=10, ttl=LONG) == []
    (taken,) = await twin.claim("op", limit=10, ttl=LONG, take_over=True)
    assert (taken.saga_id, taken.owner) == ("s1", "op")
    assert taken.fence > zombie.fence
    with pytest.raises(LeaseLost):
        await log.append("s1", [NOTE], status="compensating", lease=zombie)
    assert await log.renew([zombie], ttl=LONG) == set()
    await twin.append("s1", [NOTE], status="compensating", lease=taken)


async def test_append_with_a_stale_fence_raises_and_writes_nothing(logs) -> None:
    log, twin = logs
    zombie = await make(log, "s1", owner="a", ttl=0)
    (taker,) = await twin.claim("b", limit=1, ttl=LONG)
    assert taker.fence > zombie.fence
    with pytest.raises(LeaseLost) as lost:
        await log.append("s1", [NOTE], status="compensating", lease=zombie)
    # The worker logs this message when it stops driving the saga: it names saga and lease.
    assert str(lost.value) == f"saga s1: lease {zombie} no longer holds"
    stored = await twin.load("s1")
    assert stored is not None
    assert (stored.status, stored.events) == ("started", (START,))
    await twin.append("s1", [NOTE], status="compensating", lease=taker)
    stored = await log.load("s1")
    assert stored is not None
    assert (stored.status, len(stored.events)) == ("compensating", 2)


async def test_an_expired_lease_nobody_took_still_writes(logs) -> None:
    log, _ = logs
    lease = await make(log, "s1", ttl=0)
    await log.append("s1", [NOTE], status="started", lease=lease)
    assert await log.renew([lease], ttl=LONG) == {"s1"}


async def test_renew_extends_held_leases_and_reports_lost_ones(logs) -> None:
    log, twin = logs
    kept = await make(log, "kept", owner="a", ttl=LONG)
    lost = await make(log, "lost", owner="a", ttl=0)
    await twin.claim("b", limit=10, ttl=LONG)
    assert await log.renew([kept, lost], ttl=LONG) == {"kept"}
    assert await twin.claim("b", limit=10, ttl=LONG) == []  # renewed: still not free


async def test_release_frees_the_saga_and_acquire_waits_for_a_free_one(logs) -> None:
    log, twin = logs
    lease = await make(log, "s1", owner="a", ttl=LONG)
    assert await twin.acquire("s1", "b", ttl=LONG) is None
    await log.release([lease])
    taken = await twin.acquire("s1", "b", ttl=LONG)
    assert taken == Lease("s1", "b", lease.fence + 1)  # the lease the log now honours
    await log.release([lease])  # a stale release is ignored
    assert await log.acquire("s1", "c", ttl=LONG) is None


async def test_leases_held_lists_the_live_leases_of_an_owner_prefix(logs) -> None:
    log, twin = logs
    old = await make(log, "s1", owner="tracker-w_1@serve-1", ttl=LONG)
    await make(log, "s2", owner="tracker-w_1@op-7", ttl=LONG)
    await make(log, "s3", owner="tracker-w_1@serve-2", ttl=0)  # expired: nobody holds it
    await make(log, "s4", owner="tracker-wx1@serve-1", ttl=LONG)  # LIKE's `_` would match it
    freed = await make(log, "s5", owner="tracker-w_1@serve-1", ttl=LONG)
    await log.release([freed])
    assert await twin.leases_held(owner_prefix="tracker-w_1@serve-") == [old]
    assert await twin.leases_held(owner_prefix="nobody") == []


async def test_acquire_also_leases_a_settled_saga_for_an_operator(logs) -> None:
    log, twin = logs
    lease = await make(log, "s1", ttl=LONG)
    await log.append("s1", [NOTE], status="failed_needs_attention", lease=lease)
    await log.release([lease])
    assert await twin.claim("b", limit=10, ttl=LONG) == []
    assert await twin.acquire("s1", "operator", ttl=LONG) is not None


async def test_the_last_append_can_release_the_lease_in_the_same_write(logs) -> None:
    log, twin = logs
    lease = await make(log, "s1", owner="a", ttl=LONG)
    await log.append("s1", [NOTE], status="completed", lease=lease, release=True)
    stored = await twin.load("s1")
    assert stored is not None
    assert (stored.status, stored.events[-1]) == ("completed", NOTE)
    taken = await twin.acquire("s1", "b", ttl=LONG)  # free at once, not after the ttl
    assert taken is not None
    assert taken.fence > lease.fence
    with pytest.raises(LeaseLost):  # and the released lease writes no more
        await log.append("s1", [NOTE], status="completed", lease=lease)


@pytest.mark.parametrize("logs", ["sqlite", "postgres", "mysql"], indirect=True)
async def test_leases_run_on_the_database_clock_not_the_process_clock(
    logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, twin = logs
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # the taker's clock is behind
    await make(log, "behind", ttl=LONG)
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # and this one's is ahead
    await make(log, "ahead", ttl=0)
    assert [c.saga_id for c in await twin.claim("b", limit=10, ttl=LONG)] == ["ahead"]
    await make(log, "live", ttl=LONG)
    assert await twin.claim("c", limit=10, ttl=LONG) == []
    assert await twin.acquire("live", "c", ttl=LONG) is None


@pytest.fixture
def zone_not_utc() -> Iterator[None]:
    """The process's local zone 5:30 east of UTC (a POSIX rule: no zone database needed), so
    that a time left in the local zone shows in its offset even on a machine kept on UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize("logs", ["sqlite", "postgres", "mysql"], indirect=True)
async def test_now_reads_the_database_clock_not_the_process_clock(
    logs, monkeypatch: pytest.MonkeyPatch, zone_not_utc: None
) -> None:
    """`now()` is the lease clock (`resumption` ages sagas by it): a process clock an hour off
    changes nothing (the database runs on this host: its clock is the real one here). It is in
    UTC whatever the process's local zone."""
    log, _ = logs
    real = time.time
    for step in (-3600, 3600):
        monkeypatch.setattr(time, "time", lambda step=step: real() + step)
        before = real()
        now = (await log.now()).timestamp()
        assert before - 1 <= now <= real() + 1  # SQLite's clock ticks in milliseconds
        assert (await log.now()).utcoffset() == timedelta(0)


async def test_memory_now_and_leases_follow_the_log_s_own_clock() -> None:
    """The memory fake's clock (a test's fake one) drives its leases and `now()` together."""
    ticks = [1_000_000.0]
    log = InMemorySagaLog(clock=lambda: ticks[0])
    assert await log.now() == datetime.fromtimestamp(1_000_000.0, UTC)
    await make(log, "s1", ttl=LONG)
    assert await log.claim("b", limit=10, ttl=LONG) == []
    ticks[0] += LONG
    assert await log.now() == datetime.fromtimestamp(1_000_000.0 + LONG, UTC)
    assert [c.saga_id for c in await log.claim("b", limit=10, ttl=LONG)] == ["s1"]


async def test_sqlite_leases_written_by_an_older_version_s_process_clock_still_read_right(
    tmp_path: Path,
) -> None:
    """Older versions wrote `time.time() + ttl`; SQLite's clock gives the same REAL seconds since
    the epoch, so files written then need no migration step."""
    db = tmp_path / "s.db"
    log = SqliteSagaLog(db)
    try:
        await make(log, "live", ttl=0)
        await make(log, "expired", ttl=LONG)
        old = sqlite3.connect(db)
        with old:
            old.executemany(
                "UPDATE sagas SET lease_until = ? WHERE saga_id = ?",
                [(time.time() + LONG, "live"), (time.time() - 1, "expired")],
            )
        old.close()
        assert [c.saga_id for c in await log.claim("b", limit=10, ttl=LONG)] == ["expired"]
    finally:
        await log.close()


async def test_memory_lease_of_ttl_zero_has_expired_even_if_the_clock_did_not_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memory fake's own clock check (the SQL backends' is tested above with the database's
    clock): a lease "until T" has expired AT T, so a ttl of 0 is free at once even on a coarse
    clock (one that returns the same time for the take and the check), as on the SQL backends."""
    monkeypatch.setattr(time, "time", lambda: 1_000_000.0)  # a clock that never ticks
    log = build_saga_log("memory://")
    await make(log, "s1", ttl=0)
    assert [c.saga_id for c in await log.claim("b", limit=10, ttl=0)] == ["s1"]
    assert await log.acquire("s1", "c", ttl=LONG) is not None


# -- claims take only the sagas the claimer can drive (a rolling upgrade on one log) -----------

V1 = DefinitionKey("transfer", 1, TRANSFER.shape_hash())
V2 = DefinitionKey("transfer", 2, "0123456789abcdef")


async def make_of(
    log: SagaLog, saga_id: str, key: DefinitionKey, *, owner: str = "a", ttl: float
) -> Lease:
    """A saga started under `key`, leased to `owner` for `ttl` (0: lapsed at once)."""
    lease = await log.create(
        saga_id=saga_id,
        definition=key.definition,
        definition_version=key.version,
        definition_hash=key.shape_hash,
        params={},
        events=[START],
        owner=owner,
        ttl=ttl,
    )
    assert lease is not None
    return lease


async def test_a_claim_never_takes_a_saga_of_a_definition_it_cannot_drive_even_lapsed(
    logs,
) -> None:
    """An older worker (version 1 only) and a newer saga whose server died (its lease lapsed):
    the older worker's claim passes it by, whatever the version, name or shape that differs; a
    newer worker's claim takes it."""
    log, twin = logs
    await make_of(log, "v2", V2, ttl=0)  # the newer server died: its lease lapsed at once
    await make_of(log, "other-shape", V1._replace(shape_hash="feedfacefeedface"), ttl=0)
    await make_of(log, "other-type", V1._replace(definition="order"), ttl=0)
    await make_of(log, "v1", V1, ttl=0)
    older = frozenset({V1})
    assert [c.saga_id for c in await twin.claim("old", limit=10, ttl=LONG, drivable=older)] == [
        "v1"
    ]
    assert await twin.claim("old", limit=10, ttl=LONG, drivable=older) == []
    (taken,) = await twin.claim("new", limit=10, ttl=LONG, drivable=frozenset({V1, V2}))
    assert (taken.saga_id, taken.owner) == ("v2", "new")
    assert await twin.claim("none", limit=10, ttl=LONG, drivable=frozenset()) == []
    # Without a filter (a tool that drives nothing), every free saga: the two left.
    unfiltered = await log.claim("tool", limit=10, ttl=LONG)
    assert {c.saga_id for c in unfiltered} == {"other-shape", "other-type"}


async def test_neither_its_own_recovery_nor_a_take_over_takes_a_saga_it_cannot_drive(
    logs,
) -> None:
    log, twin = logs
    await make_of(log, "v2-mine", V2, owner="old", ttl=LONG)  # leased under the claimer's id
    await make_of(log, "v2-theirs", V2, owner="new", ttl=LONG)
    await make_of(log, "v1-theirs", V1, owner="new", ttl=LONG)
    older = frozenset({V1})
    assert await twin.claim("old", limit=10, ttl=LONG, drivable=older, include_own=True) == []
    taken = await twin.claim("old", limit=10, ttl=LONG, drivable=older, take_over=True)
    assert [c.saga_id for c in taken] == ["v1-theirs"]
    mine = await twin.claim("old", limit=10, ttl=LONG, drivable=frozenset({V2}), include_own=True)
    assert [c.saga_id for c in mine] == ["v2-mine"]


async def test_a_filtered_claim_still_takes_the_oldest_drivable_sagas_first_up_to_the_limit(
    logs,
) -> None:
    """The filter applies before the limit and the order: older sagas of another version do
    not use up the claim."""
    log, twin = logs
    for second, (saga_id, key) in enumerate(
        [("v2-a", V2), ("v2-b", V2), ("v1-old", V1), ("v2-c", V2), ("v1-new", V1)]
    ):
        started = SagaEvent(EventKind.STARTED, at=f"2026-01-01T00:00:0{second}+00:00")
        await log.create(
            saga_id=saga_id,
            definition=key.definition,
            definition_version=key.version,
            definition_hash=key.shape_hash,
            params={},
            events=[started],
            owner="a",
            ttl=0,
        )
    older = frozenset({V1})
    rounds = [await twin.claim("old", limit=1, ttl=LONG, drivable=older) for _ in range(3)]
    assert [[c.saga_id for c in claimed] for claimed in rounds] == [["v1-old"], ["v1-new"], []]
