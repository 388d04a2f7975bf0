"""The SagaLog contract, run against every backend (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

from repository_after.domain.saga import EventKind, Outcome, SagaEvent, StepRole
from repository_after.service_layer.saga_ports import SagaLog

AT = "2026-01-01T00:00:00+00:00"
START = SagaEvent(EventKind.STARTED, at=AT)


def attempt(n: int) -> SagaEvent:
    return SagaEvent(
        EventKind.ATTEMPT,
        at=AT,
        step="debit",
        role=StepRole.ACTION,
        operation="debit",
        outcome=Outcome.UNKNOWN,
        attempt=n,
        status_code=500,
    )


async def test_create_then_load_returns_params_and_first_event(saga_log: SagaLog) -> None:
    assert await saga_log.create(
        saga_id="s1", definition="transfer", params={"a": 1}, events=[START]
    )
    stored = await saga_log.load("s1")
    assert stored is not None
    assert (stored.definition, stored.params, stored.status) == ("transfer", {"a": 1}, "started")
    assert stored.events == (START,)


async def test_create_with_an_existing_id_changes_nothing(saga_log: SagaLog) -> None:
    await saga_log.create(saga_id="s1", definition="transfer", params={"a": 1}, events=[START])
    again = await saga_log.create(
        saga_id="s1", definition="transfer", params={"a": 2}, events=[START]
    )
    assert again is None
    stored = await saga_log.load("s1")
    assert stored is not None
    assert stored.params == {"a": 1}
    assert len(stored.events) == 1


async def test_appended_events_come_back_in_order_with_the_new_status(saga_log) -> None:
    await saga_log.create(saga_id="s1", definition="transfer", params={}, events=[START])
    await saga_log.append("s1", [attempt(1), attempt(2)], status="debiting")
    await saga_log.append("s1", [attempt(3)], status="compensating")
    stored = await saga_log.load("s1")
    assert stored is not None
    assert [e.attempt for e in stored.events] == [None, 1, 2, 3]
    assert stored.events[1] == attempt(1)
    assert stored.status == "compensating"


async def test_unsettled_ids_exclude_terminal_and_parked_sagas(saga_log: SagaLog) -> None:
    for saga_id, status in [
        ("a", "debiting"),
        ("b", "completed"),
        ("c", "compensating"),
        ("d", "failed_needs_attention"),
        ("e", "rejected"),
    ]:
        await saga_log.create(saga_id=saga_id, definition="transfer", params={}, events=[START])
        await saga_log.append(saga_id, [attempt(1)], status=status)
    assert sorted(await saga_log.unsettled_ids()) == ["a", "c"]
    counts = await saga_log.count_by_status()
    assert counts == {
        "debiting": 1,
        "completed": 1,
        "compensating": 1,
        "failed_needs_attention": 1,
        "rejected": 1,
    }


async def test_list_recent_filters_by_status_and_limits(saga_log: SagaLog) -> None:
    for i in range(5):
        await saga_log.create(
            saga_id=f"s{i}", definition="transfer", params={"i": i}, events=[START]
        )
    await saga_log.append("s3", [attempt(1)], status="completed")
    assert [s.saga_id for s in await saga_log.list_recent(status="completed")] == ["s3"]
    assert len(await saga_log.list_recent(limit=2)) == 2
    summary = await saga_log.summary("s3")
    assert summary is not None
    assert summary.status == "completed"
    assert await saga_log.load("missing") is None
    assert await saga_log.summary("missing") is None


async def test_purge_removes_only_old_terminal_sagas(saga_log: SagaLog) -> None:
    for saga_id, status in [
        ("done", "completed"),
        ("undone", "compensated"),
        ("parked", "failed_needs_attention"),
        ("running", "crediting"),
    ]:
        await saga_log.create(saga_id=saga_id, definition="transfer", params={}, events=[START])
        await saga_log.append(saga_id, [attempt(1)], status=status)
    assert await saga_log.purge_settled(before="2000-01-01") == 0
    assert await saga_log.purge_settled(before="9999-01-01") == 2
    assert await saga_log.load("done") is None
    assert await saga_log.load("undone") is None
    assert sorted(await saga_log.count_by_status()) == ["crediting", "failed_needs_attention"]
    parked = await saga_log.load("parked")
    assert parked is not None
    assert len(parked.events) == 2


async def test_create_can_write_several_first_events_and_their_status(saga_log) -> None:
    assert await saga_log.create(
        saga_id="s1",
        definition="transfer",
        params={},
        events=[START, attempt(1)],
        status="debiting",
    )
    await saga_log.append("s1", [attempt(2)], status="debiting")
    stored = await saga_log.load("s1")
    assert stored is not None
    assert stored.status == "debiting"
    assert stored.events == (START, attempt(1), attempt(2))
