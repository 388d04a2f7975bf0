"""Choreographed sagas in one process: the in-memory broker (RabbitMQ's delivery rules) and real
SQLite files (the account store with the saga log, the inventory's and orders' kit stores),
composed as `sagabank serve --mode choreography` composes them (tests/choreography_support.py).

Each test drives sagas through the broker alone and checks the books: money and stock conserved,
each effect applied once, the saga log (the tracker's projection) telling the course."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from repository_after.domain.saga import EventKind, Outcome, SagaEvent, SagaStatus, StepRole
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.service_layer.reconcile import reconcile
from repository_after.service_layer.saga_ports import Lease
from tests.choreography_support import Deployment, deployment

pytestmark = pytest.mark.timeout(60)

TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 100}


def order(order_id: str, qty: int = 2, total: int = 50) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": "apple", "qty": qty}],
        "total": total,
    }


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> str | None:
    """Where the deployment keeps its stores: SQLite files (None), then one fresh PostgreSQL
    database holding every store, as a PostgreSQL deployment does by default."""
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else None


@pytest.fixture
async def dep(tmp_path: Path, db: str | None) -> AsyncIterator[Deployment]:
    async with deployment(tmp_path, InMemoryBroker(), stock={"apple": 5}, database_url=db) as found:
        yield found


async def _events(dep: Deployment, saga_id: str) -> list[tuple[str, str | None, str | None]]:
    stored = await dep.orchestrator.get(saga_id)
    return [
        (e.kind.value, e.operation, e.outcome.value if e.outcome else None) for e in stored.events
    ]


async def _books_ok(dep: Deployment) -> None:
    balances = await dep.balances()
    assert sum(balances.values()) == 2_000
    stock = (await dep.stock()).get("apple")
    if stock is not None:
        assert stock["available"] + stock["reserved"] + stock["sold"] == stock["opened"]
        assert stock["reserved"] == 0
    report = await reconcile(dep.accounts, dep.orchestrator.log)
    assert report.ok, report.violations
    assert await dep.broker.dead_letters(dep.runtime.topology) == []


async def test_a_transfer_completes_and_a_refused_one_is_rejected(dep: Deployment) -> None:
    await dep.start("transfer", TRANSFER, "t-1")
    await dep.start("transfer", {**TRANSFER, "amount": 5_000}, "t-2")
    assert await dep.settled("t-1") == SagaStatus.COMPLETED
    assert await dep.settled("t-2") == SagaStatus.REJECTED
    assert await dep.balances() == {"acc-01": 900, "acc-02": 1_100}
    assert [k for k, _, _ in await _events(dep, "t-1")] == [
        "started",
        "operation_started",
        "attempt",
        "operation_started",
        "attempt",
    ]
    await _books_ok(dep)


async def test_an_order_completes_and_its_refusals_compensate_last_first(
    dep: Deployment,
) -> None:
    await dep.start("order", order("o-1"), "o-1")
    await dep.start("order", order("o-2", total=5_000), "o-2")  # the charge is refused
    assert await dep.settled("o-1") == SagaStatus.COMPLETED
    assert await dep.settled("o-2") == SagaStatus.COMPENSATED
    compensations = [op for k, op, out in await _events(dep, "o-2") if k == "attempt"][3:]
    assert compensations == ["release", "cancel"]
    assert (await dep.stock())["apple"]["sold"] == 2
    assert await dep.balances() == {"acc-01": 950, "acc-02": 1_050}
    await _books_ok(dep)


async def test_every_message_delivered_twice_applies_once(dep: Deployment) -> None:
    assert isinstance(dep.broker, InMemoryBroker)
    dep.broker.duplicate_next_publishes(1_000)
    for i in range(4):
        await dep.start("transfer", TRANSFER, f"t-{i}")
        await dep.start("order", order(f"o-{i}", qty=1, total=10), f"o-{i}")
    for i in range(4):
        assert await dep.settled(f"t-{i}") == SagaStatus.COMPLETED
        assert await dep.settled(f"o-{i}") == SagaStatus.COMPLETED
    await dep.broker.idle()
    assert await dep.balances() == {"acc-01": 1_000 - 400 - 40, "acc-02": 1_000 + 400 + 40}
    assert (await dep.stock())["apple"]["sold"] == 4
    # each of the 16 calls the account service got (debit and credit, charge and pay) came
    # twice and has one inbox row: the copy was absorbed
    assert len(await _inbox_results(dep, "accounts")) == 16
    await _books_ok(dep)


async def test_a_failing_call_is_redelivered_and_applied_once_it_passes(
    tmp_path: Path,
    db: str | None,
) -> None:
    async with deployment(
        tmp_path, InMemoryBroker(), database_url=db, stock={"apple": 5}, delivery_limit=50
    ) as dep:
        dep.blocked.add("reserve")
        await dep.start("order", order("o-1"), "o-1")

        async def failed_twice() -> bool:
            return dep.failed["reserve"] >= 2

        await dep.until(failed_twice)
        dep.blocked.discard("reserve")
        assert await dep.settled("o-1") == SagaStatus.COMPLETED
        stock = (await dep.stock())["apple"]
        assert (stock["available"], stock["reserved"], stock["sold"]) == (3, 0, 2)
        await _books_ok(dep)


async def test_the_tracker_keeps_a_projection_it_cannot_write_yet_and_loses_nothing(
    dep: Deployment,
) -> None:
    # While an operator holds the saga's lease the tracker cannot write: it keeps the delivery
    # unacknowledged and projects it once the lease is gone (never acked before its write,
    # never dead-lettered).
    await dep.start("transfer", TRANSFER, "t-1")
    log = dep.orchestrator.log

    held: list[Lease] = []

    async def held_by_operator() -> bool:
        lease = await log.acquire("t-1", "operator", ttl=30.0)
        held.extend([lease] if lease is not None else [])
        return bool(held)

    await dep.until(held_by_operator)

    async def credited() -> bool:
        return await dep.balances() == {"acc-01": 900, "acc-02": 1_100}

    await dep.until(credited)  # the services finished the saga meanwhile

    async def tracker_waits() -> bool:
        return dep.orchestrator.tracker.waiting > 0

    await dep.until(tracker_waits)  # a projection kept, unacknowledged, not dropped
    assert (await dep.orchestrator.get("t-1")).status != SagaStatus.COMPLETED
    await log.release(held)  # the operator is done
    assert await dep.settled("t-1", timeout=10) == SagaStatus.COMPLETED
    await _books_ok(dep)


async def test_a_message_that_adds_nothing_is_projected_without_the_saga_lease(
    tmp_path: Path,
    db: str | None,
) -> None:
    # A copy, or a message older than the log, writes nothing: the tracker projects it without
    # taking the saga's lease, so it never turns an operator's action or a scan away (before,
    # it took the lease for nothing: `retry` met `SagaBusy` and `time_out_silent` skipped the
    # saga while the start message was being projected). One with a new event still waits.
    from repository_after.choreography import scan
    from repository_after.choreography.course import Course, Kind

    async with deployment(tmp_path, InMemoryBroker(), database_url=db, delivery_limit=1_000) as dep:
        dep.blocked.add("debit")
        await dep.start("transfer", TRANSFER, "t-1")
        tracker, log = dep.orchestrator.tracker, dep.orchestrator.log
        lease = await log.acquire("t-1", "operator", ttl=30.0)
        assert lease is not None
        stored = await log.load("t-1")
        assert stored is not None
        definition = tracker.definition_of(stored)
        assert definition is not None
        old = Course.of("t-1", definition, stored.params, stored.events, Kind.CALL)
        state = await tracker.project(old)  # the start message again: nothing new
        assert state.status == stored.status
        assert await log.acquire("t-1", "tracker", ttl=30.0) is None  # still the operator's
        later = await log.load("t-1")
        assert later is not None
        assert later.events == stored.events
        retried = SagaEvent(EventKind.OPERATOR_RETRY, at=stored.events[-1].at, note="new")
        new = Course.of("t-1", definition, stored.params, (*stored.events, retried), Kind.CALL)
        with pytest.raises(scan.SagaBusy):
            await tracker.project(new)
        await log.release([lease])
        dep.blocked.discard("debit")
        assert await dep.settled("t-1") == SagaStatus.COMPLETED


async def _inbox_results(dep: Deployment, consumer: str) -> list[dict[str, Any]]:
    store = {"inventory": dep.inventory.store, "accounts": None}[consumer]
    if store is None:
        rows = await dep.accounts.read(
            lambda tx: tx._run(  # type: ignore[attr-defined]
                "SELECT result FROM inbox WHERE consumer = ?", (consumer,)
            ).fetchall()
        )
    else:
        rows = await store.read(
            lambda tx: tx.execute("SELECT result FROM inbox WHERE consumer = ?", (consumer,))
        )
    return [orjson.loads(row[0]) for row in rows]


async def test_a_silent_action_is_timed_out_compensated_and_its_late_call_fenced(
    tmp_path: Path,
    db: str | None,
) -> None:
    broker = InMemoryBroker()
    async with deployment(
        tmp_path,
        broker,
        database_url=db,
        stock={"apple": 5},
        action_timeout=0.3,
        delivery_limit=1_000,
    ) as dep:
        dep.blocked.add("reserve")  # the inventory "hangs" on this reservation
        await dep.start("order", order("o-1"), "o-1")
        assert await dep.settled("o-1") == SagaStatus.COMPENSATED
        dep.blocked.discard("reserve")  # the late reservation arrives after its compensation
        await broker.idle()
        events = await _events(dep, "o-1")
        assert ("retries_exhausted", "reserve", None) in events
        assert [op for k, op, _ in events if k == "attempt"] == ["create", "release", "cancel"]
        late = [r for r in await _inbox_results(dep, "inventory") if "fenced" in r]
        assert late == [
            {"fenced": "timed_out", "status_code": 409, "error": "transaction_compensated"}
        ]
        stock = (await dep.stock())["apple"]
        assert (stock["available"], stock["reserved"], stock["sold"]) == (5, 0, 0)
        await _books_ok(dep)


async def test_a_silent_payment_is_settled_by_void_credit_and_its_late_credit_fenced(
    tmp_path: Path,
    db: str | None,
) -> None:
    broker = InMemoryBroker()
    async with deployment(
        tmp_path, broker, database_url=db, action_timeout=0.3, delivery_limit=1_000
    ) as dep:
        dep.blocked.add("credit")
        await dep.start("transfer", TRANSFER, "t-1")
        assert await dep.settled("t-1") == SagaStatus.COMPENSATED
        dep.blocked.discard("credit")
        await broker.idle()
        stored = await dep.orchestrator.get("t-1")
        settled = [e for e in stored.events if e.role is StepRole.SETTLEMENT and e.outcome]
        assert [(e.operation, e.result) for e in settled] == [("void_credit", "voided")]
        late = [r for r in await _inbox_results(dep, "accounts") if "fenced" in r]
        assert late == [{"fenced": "timed_out", "status_code": 409, "error": "transaction_voided"}]
        assert await dep.balances() == {"acc-01": 1_000, "acc-02": 1_000}
        await _books_ok(dep)


async def test_a_dead_letter_parks_its_saga_and_retry_redrives_it_to_the_end(
    dep: Deployment,
) -> None:
    dep.blocked.add("credit")  # fails every delivery: over the limit (2), dead-lettered
    await dep.start("transfer", TRANSFER, "t-1")
    assert await dep.settled("t-1") == SagaStatus.FAILED_NEEDS_ATTENTION
    stored = await dep.orchestrator.get("t-1")
    assert stored.events[-1].kind is EventKind.PARKED
    assert (stored.events[-1].note or "").startswith("dead-lettered message ")
    kept = await dep.broker.dead_letters(dep.runtime.topology)
    assert [m.routing_key for m in kept] == ["call.accounts.transfer"]
    dep.blocked.discard("credit")  # the fix is deployed
    state = await dep.orchestrator.retry("t-1", note="credit fixed")
    assert state.status == SagaStatus.COMPLETED
    assert await dep.balances() == {"acc-01": 900, "acc-02": 1_100}
    after = (await dep.orchestrator.get("t-1")).events
    assert [(e.kind, e.operation, e.outcome) for e in after[-3:]] == [
        (EventKind.PARKED, None, None),
        (EventKind.OPERATOR_RETRY, None, None),
        (EventKind.ATTEMPT, "credit", Outcome.SUCCEEDED),
    ]
    assert await dep.broker.dead_letters(dep.runtime.topology) == []
    await _books_ok(dep)


async def test_a_scan_that_listed_a_dead_letter_before_its_retry_does_not_park_again(
    tmp_path: Path, db: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scan lists the dead letters, then the operator's retry records its event and redrives
    # the message, then the scan reaches the saga: it must not park it again (before, it did:
    # `parked` after `operator_retry`, the saga shown failed while its redriven call went on).
    # The park checks under the saga's lease that the message is still a dead letter, and the
    # retry holds that lease until its redrive is done.
    from repository_after.choreography import dead_letters

    async with deployment(tmp_path, InMemoryBroker(), database_url=db, interval=600) as dep:
        tracker, broker = dep.orchestrator.tracker, dep.broker

        async def first_pass_done() -> bool:
            return tracker.dead_letters.seen is not None

        await dep.until(first_pass_done)  # the loop's next pass is 10 minutes away
        dep.blocked.add("credit")
        await dep.start("transfer", TRANSFER, "t-1")

        async def dead_lettered() -> bool:
            return bool(await broker.dead_letters(dep.runtime.topology))

        await dep.until(dead_lettered)
        assert await dead_letters.sweep(tracker) == 1
        dep.blocked.discard("credit")
        listed = broker.dead_letter_records  # what the scan lists with

        async def listed_then_retried(topology: Any) -> Any:
            found = await listed(topology)
            monkeypatch.setattr(broker, "dead_letter_records", listed)
            await tracker.retry("t-1", note="credit fixed")  # lands right after the listing
            return found

        monkeypatch.setattr(broker, "dead_letter_records", listed_then_retried)
        assert await dead_letters.sweep(tracker) == 0
        # and a scan between the retry's event and its redrive finds the saga's lease taken
        dep.blocked.add("credit")
        await dep.start("transfer", TRANSFER, "t-2")
        await dep.until(dead_lettered)
        assert await dead_letters.sweep(tracker) == 1
        dep.blocked.discard("credit")
        redrive = broker.redrive
        passes: list[int] = []

        async def scanned_then_redriven(topology: Any, message_id: str) -> bool:
            passes.append(await dead_letters.sweep(tracker))
            return await redrive(topology, message_id)

        monkeypatch.setattr(broker, "redrive", scanned_then_redriven)
        await tracker.retry("t-2", note="credit fixed")
        assert passes == [0]
        assert await dep.settled("t-2") == SagaStatus.COMPLETED
        assert await dep.settled("t-1") == SagaStatus.COMPLETED
        kinds = [e.kind for e in (await dep.orchestrator.get("t-1")).events]
        assert kinds[-3:] == [EventKind.PARKED, EventKind.OPERATOR_RETRY, EventKind.ATTEMPT]
        await _books_ok(dep)


async def test_a_silent_compensation_parks_and_retry_sends_it_again(
    tmp_path: Path, db: str | None
) -> None:
    broker = InMemoryBroker()
    async with deployment(
        tmp_path,
        broker,
        database_url=db,
        stock={"apple": 5},
        settle_timeout=0.3,
        delivery_limit=1_000,
    ) as dep:
        dep.blocked.add("release")  # the charge is refused; its release "hangs"
        await dep.start("order", order("o-1", total=5_000), "o-1")
        assert await dep.settled("o-1") == SagaStatus.FAILED_NEEDS_ATTENTION
        stored = await dep.orchestrator.get("o-1")
        assert stored.events[-1].kind is EventKind.RETRIES_EXHAUSTED
        assert stored.events[-1].operation == "release"
        assert await broker.dead_letters(dep.runtime.topology) == []
        dep.blocked.discard("release")
        state = await dep.orchestrator.retry("o-1", note="inventory back")
        assert state.status == SagaStatus.COMPENSATED
        await broker.idle()
        after = (await dep.orchestrator.get("o-1")).events
        assert [(e.kind, e.operation) for e in after[len(stored.events) :]][:2] == [
            (EventKind.OPERATOR_RETRY, None),
            (EventKind.OPERATION_STARTED, "release"),
        ]
        stock = (await dep.stock())["apple"]
        assert (stock["available"], stock["reserved"], stock["sold"]) == (5, 0, 0)
        await _books_ok(dep)


async def test_a_saga_resumed_by_redrive_is_timed_out_from_its_retry(
    tmp_path: Path, db: str | None
) -> None:
    # The debit fails on every delivery (below its limit); an operator parked the saga for a
    # dead letter and retried it: its log ends with `parked` and `operator_retry`, after the
    # intent the redriven message waits on. Past the step's time the tracker times that call
    # out with the history the message carries, and the saga is compensated; the late debit
    # is refused by the tombstone.
    from repository_after.choreography import scan

    # The test runs the scan pass itself: the loop's (every 10 minutes here) made its first pass
    # before the time limit is lowered, so no pass of its can write this time-out first.
    async with deployment(
        tmp_path, InMemoryBroker(), database_url=db, delivery_limit=1_000, interval=600
    ) as dep:
        tracker = dep.orchestrator.tracker

        async def first_pass_done() -> bool:
            return tracker.dead_letters.seen is not None

        await dep.until(first_pass_done)
        dep.blocked.add("debit")
        await dep.start("transfer", TRANSFER, "t-1")
        note = "dead-lettered message m-1 (call.accounts.transfer)"
        await tracker.record("t-1", EventKind.PARKED, note)
        await tracker.retry("t-1", note="redriven")  # m-1 is no dead letter here: nothing sent
        kinds = [e.kind for e in (await dep.orchestrator.get("t-1")).events]
        assert kinds[-3:] == [
            EventKind.OPERATION_STARTED,
            EventKind.PARKED,
            EventKind.OPERATOR_RETRY,
        ]
        log = dep.orchestrator.log
        retried_at = datetime.fromisoformat((await dep.orchestrator.get("t-1")).events[-1].at)

        async def log_clock_past_the_retry() -> bool:  # it ticks in milliseconds
            return await log.now() > retried_at

        await dep.until(log_clock_past_the_retry)
        tracker.action_timeout = 0.0
        assert await scan.time_out_silent(tracker) == 1
        assert await dep.settled("t-1") == SagaStatus.COMPENSATED
        dep.blocked.discard("debit")

        async def late_debit_fenced() -> bool:
            results = await _inbox_results(dep, "accounts")
            return {
                "fenced": "timed_out",
                "status_code": 409,
                "error": "transaction_compensated",
            } in results

        await dep.until(late_debit_fenced)
        assert await dep.balances() == {"acc-01": 1_000, "acc-02": 1_000}
        await _books_ok(dep)


async def test_one_database_is_one_outbox_published_by_one_relay(
    dep: Deployment, db: str | None
) -> None:
    # SQLite: the account database (with the log beside it), the inventory's and the orders';
    # PostgreSQL: one database holds them all, so one relay claims its outbox (not four relays
    # claiming the same rows, and /metrics not counting one backlog four times).
    named = [name for name, _ in dep.runtime.named_stores()]
    assert named == (["accounts"] if db else ["accounts", "inventory", "orders"])
    assert len(dep.runtime.relays) == len(named)
    await dep.start("transfer", TRANSFER, "t-1")
    assert await dep.settled("t-1") == "completed"
    backlogs = await dep.runtime.outbox_backlogs()
    assert set(backlogs) == set(named)
