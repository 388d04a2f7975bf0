"""The SagaLog contract, run against every backend (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

from repository_after.domain.saga import EventKind, Outcome, SagaEvent, StepRole
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.saga_ports import (
    DefinitionInUse,
    DefinitionKey,
    SagaLog,
    SagaSummary,
)

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
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={"a": 1},
        events=[START],
    )
    stored = await saga_log.load("s1")
    assert stored is not None
    assert (stored.definition, stored.params, stored.status) == ("transfer", {"a": 1}, "started")
    assert stored.events == (START,)


async def test_create_with_an_existing_id_changes_nothing(saga_log: SagaLog) -> None:
    await saga_log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={"a": 1},
        events=[START],
    )
    again = await saga_log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={"a": 2},
        events=[START],
    )
    assert again is None
    stored = await saga_log.load("s1")
    assert stored is not None
    assert stored.params == {"a": 1}
    assert len(stored.events) == 1


async def test_appended_events_come_back_in_order_with_the_new_status(saga_log) -> None:
    await saga_log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
    )
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
        await saga_log.create(
            saga_id=saga_id,
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={},
            events=[START],
        )
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
            saga_id=f"s{i}",
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={"i": i},
            events=[START],
        )
    await saga_log.append("s3", [attempt(1)], status="completed")
    assert [s.saga_id for s in await saga_log.list_recent(status="completed", limit=10)] == ["s3"]
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
        await saga_log.create(
            saga_id=saga_id,
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={},
            events=[START],
        )
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
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START, attempt(1)],
        status="debiting",
    )
    await saga_log.append("s1", [attempt(2)], status="debiting")
    stored = await saga_log.load("s1")
    assert stored is not None
    assert stored.status == "debiting"
    assert stored.events == (START, attempt(1), attempt(2))


def at(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}+00:00"


async def test_a_saga_s_times_are_those_of_its_first_and_last_events(saga_log) -> None:
    """`created_at`/`updated_at` come from the events written (the port's rule), not from the
    clock at write time: a driver shows the saga from the events it holds, and purges and the
    listings order by these times. Distinct times, so first/last cannot be confused."""
    first = [SagaEvent(EventKind.STARTED, at=at(1)), attempt(1)._replace(at=at(2))]
    await saga_log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={"a": 1},
        events=first,
    )
    summary = await saga_log.summary("s1")
    assert summary is not None
    assert (summary.saga_id, summary.created_at, summary.updated_at) == ("s1", at(1), at(2))
    later = [attempt(2)._replace(at=at(3)), attempt(3)._replace(at=at(4))]
    await saga_log.append("s1", later, status="debiting")
    stored = await saga_log.load("s1")
    assert stored is not None
    assert (stored.saga_id, stored.definition, stored.params, stored.status) == (
        "s1",
        "transfer",
        {"a": 1},
        "debiting",
    )
    assert (stored.created_at, stored.updated_at) == (at(1), at(4))
    assert stored.events == (*first, *later)
    assert await saga_log.summary("s1") == SagaSummary(
        "s1", "transfer", 1, TRANSFER.shape_hash(), {"a": 1}, "debiting", at(1), at(4)
    )


async def test_loaded_events_carry_their_enum_members(saga_log: SagaLog) -> None:
    """Event readers compare with `is` (`e.role is StepRole.ACTION` in the settlement and the
    metrics code); a str equal to the member's value would silently fail those checks."""
    await saga_log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
    )
    await saga_log.append("s1", [attempt(1)], status="debiting")
    stored = await saga_log.load("s1")
    assert stored is not None
    event = stored.events[1]
    assert (event.kind, event.role, event.outcome) == (
        EventKind.ATTEMPT,
        StepRole.ACTION,
        Outcome.UNKNOWN,
    )
    assert event.kind is EventKind.ATTEMPT
    assert event.role is StepRole.ACTION
    assert event.outcome is Outcome.UNKNOWN


async def test_list_recent_is_newest_first_and_unsettled_ids_oldest_first(saga_log) -> None:
    """Created in an order unlike their age, with distinct times, so neither insertion order nor
    the reversed order passes. `list_recent` feeds the dashboard and reconcile (newest first, and
    its limit keeps the newest); the metrics take `unsettled_ids()[0]` as the oldest in flight."""
    for saga_id, second in [("b", 2), ("d", 4), ("a", 1), ("c", 3)]:
        started = SagaEvent(EventKind.STARTED, at=at(second))
        await saga_log.create(
            saga_id=saga_id,
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={},
            events=[started],
        )
    assert [s.saga_id for s in await saga_log.list_recent(limit=10)] == ["d", "c", "b", "a"]
    assert [s.saga_id for s in await saga_log.list_recent(limit=2)] == ["d", "c"]
    assert [s.saga_id for s in await saga_log.list_recent(status="started", limit=3)] == [
        "d",
        "c",
        "b",
    ]
    assert await saga_log.unsettled_ids() == ["a", "b", "c", "d"]


async def test_purge_keeps_a_saga_updated_exactly_at_the_cutoff(saga_log: SagaLog) -> None:
    """Purging "updated before `before`" is strict: a retention cut-off deletes nothing of its own
    instant (the boundary of the purge)."""
    await saga_log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
    )
    await saga_log.append("s1", [attempt(1)._replace(at=at(5))], status="completed")
    assert await saga_log.purge_settled(before=at(5)) == 0
    assert await saga_log.load("s1") is not None
    assert await saga_log.purge_settled(before=at(6)) == 1
    assert await saga_log.load("s1") is None


async def test_each_saga_keeps_the_version_and_shape_hash_it_was_created_with(
    saga_log: SagaLog,
) -> None:
    await saga_log.create(
        saga_id="t1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={"a": 1},
        events=[START],
    )
    await saga_log.create(
        saga_id="o2",
        definition="order",
        definition_version=2,
        definition_hash="0123456789abcdef",
        params={},
        events=[START],
    )
    await saga_log.append("o2", [attempt(1)], status="reserving")  # a write keeps them
    loaded = {}
    for saga_id in ("t1", "o2"):
        stored = await saga_log.load(saga_id)
        summary = await saga_log.summary(saga_id)
        assert stored is not None
        assert summary is not None
        assert (summary.definition, summary.definition_version, summary.definition_hash) == (
            stored.definition,
            stored.definition_version,
            stored.definition_hash,
        )
        loaded[saga_id] = (stored.definition, stored.definition_version, stored.definition_hash)
    assert loaded == {
        "t1": ("transfer", 1, TRANSFER.shape_hash()),
        "o2": ("order", 2, "0123456789abcdef"),
    }
    recent = {
        s.saga_id: (s.definition_version, s.definition_hash)
        for s in await saga_log.list_recent(limit=10)
    }
    assert recent == {"t1": (1, TRANSFER.shape_hash()), "o2": (2, "0123456789abcdef")}


async def test_definitions_in_use_count_the_unfinished_sagas_of_each_version_and_shape(
    saga_log: SagaLog,
) -> None:
    """Every saga not yet terminal counts, parked ones too (an operator may retry them);
    terminal sagas never resume and do not count."""
    assert await saga_log.definitions_in_use() == []
    sagas = [
        ("a", "transfer", 1, "h1", "debiting"),
        ("b", "transfer", 1, "h1", "failed_needs_attention"),
        ("c", "transfer", 1, "h2", "compensating"),
        ("d", "transfer", 2, "h1", "crediting"),
        ("e", "order", 1, "h1", "reserving"),
        ("f", "transfer", 1, "h3", "completed"),
        ("g", "transfer", 3, "h4", "compensated"),
        ("h", "transfer", 3, "h4", "rejected"),
        ("i", "transfer", 3, "h4", "resolved"),
    ]
    for saga_id, definition, version, shape, status in sagas:
        await saga_log.create(
            saga_id=saga_id,
            definition=definition,
            definition_version=version,
            definition_hash=shape,
            params={},
            events=[START],
            status=status,
        )
    assert await saga_log.definitions_in_use() == [
        DefinitionInUse("order", 1, "h1", 1),
        DefinitionInUse("transfer", 1, "h1", 2),
        DefinitionInUse("transfer", 1, "h2", 1),
        DefinitionInUse("transfer", 2, "h1", 1),
    ]


#: Sagas of two types: (id, type, second of its start, status).
MIXED = [
    ("o1", "order", 1, "completed"),
    ("t2", "transfer", 2, "completed"),
    ("o3", "order", 3, "reserving"),
    ("o4", "order", 4, "completed"),
    ("t5", "transfer", 5, "completed"),
    ("t6", "transfer", 6, "debiting"),
]


async def _create_typed(saga_log: SagaLog, sagas: list[tuple[str, str, int, str]]) -> None:
    """(id, saga type, second of its start, status), created in the order given."""
    for saga_id, definition, second, status in sagas:
        await saga_log.create(
            saga_id=saga_id,
            definition=definition,
            definition_version=1,
            definition_hash="h",
            params={"n": second},
            events=[SagaEvent(EventKind.STARTED, at=at(second))],
            status=status,
        )


async def test_list_recent_of_one_type_filters_before_the_limit(saga_log: SagaLog) -> None:
    """The type filter runs in the query, before the limit: the newest `limit` sagas OF THAT
    TYPE, however many newer sagas of other types exist; with a status, both filters hold."""
    await _create_typed(saga_log, MIXED)

    async def ids(
        *, limit: int, definition: str | None = None, status: str | None = None
    ) -> list[str]:
        found = await saga_log.list_recent(definition=definition, status=status, limit=limit)
        return [s.saga_id for s in found]

    assert await ids(definition="order", limit=10) == ["o4", "o3", "o1"]
    assert await ids(definition="order", limit=2) == ["o4", "o3"]
    assert await ids(definition="transfer", limit=1) == ["t6"]
    assert await ids(definition="order", status="completed", limit=10) == ["o4", "o1"]
    assert await ids(definition="transfer", status="completed", limit=1) == ["t5"]
    assert await ids(definition="order", status="debiting", limit=10) == []
    assert await ids(definition="none_such", limit=10) == []
    assert await ids(status="completed", limit=10) == ["t5", "o4", "t2", "o1"]
    summaries = await saga_log.list_recent(definition="order", limit=1)
    assert (summaries[0].definition, summaries[0].params) == ("order", {"n": 4})


async def test_count_by_definition_counts_each_type_and_status_that_occurs(
    saga_log: SagaLog,
) -> None:
    assert await saga_log.count_by_definition() == {}
    await _create_typed(saga_log, MIXED)
    await saga_log.append("o3", [attempt(1)], status="failed_needs_attention")
    assert await saga_log.count_by_definition() == {
        "order": {"completed": 2, "failed_needs_attention": 1},
        "transfer": {"completed": 2, "debiting": 1},
    }


async def test_oldest_unsettled_is_per_type_the_oldest_in_flight_and_the_oldest_parked(
    saga_log: SagaLog,
) -> None:
    """What the age gauges read: per type, the oldest saga not at rest and the oldest parked
    one; terminal sagas never count, however old. Created in an order unlike their age: the
    oldest of each kind is neither the first nor the last of its kind created."""
    assert await saga_log.oldest_unsettled() == {}
    await _create_typed(
        saga_log,
        [
            ("t5", "transfer", 5, "debiting"),
            ("o2", "order", 2, "reserving"),
            ("t1", "transfer", 1, "completed"),
            ("t3", "transfer", 3, "crediting"),
            ("t4", "transfer", 4, "debiting"),
            ("o6", "order", 6, "failed_needs_attention"),
            ("o4", "order", 4, "failed_needs_attention"),
            ("o5", "order", 5, "failed_needs_attention"),
            ("o1", "order", 1, "compensated"),
            ("x0", "legacy", 0, "resolved"),
        ],
    )
    assert await saga_log.oldest_unsettled() == {
        "transfer": {"in_flight": at(3)},
        "order": {"in_flight": at(2), "parked": at(4)},
    }


V1 = DefinitionKey("transfer", 1, TRANSFER.shape_hash())
V2 = DefinitionKey("transfer", 2, "0123456789abcdef")
LONG = 60.0


async def test_stranded_lists_the_free_sagas_of_other_definitions_idle_since_before_a_time(
    saga_log: SagaLog,
) -> None:
    """What the sweep parks: unsettled, nobody holds it (a lapsed lease counts as free), started
    under a key the sweeper does not register, last event (not first) before the time; longest
    idle first, up to the limit. Created in an order unlike their idleness."""
    sagas = [  # id, key, second of its last event, status, lease ttl (0: lapsed at once)
        ("old-v2", V2, 10, "debiting", 0.0),
        ("live-v2", V2, 1, "debiting", LONG),  # another worker holds it
        ("v1", V1, 2, "debiting", 0.0),  # the sweeper can drive it: claimed, not swept
        ("older-v2", V2, 5, "crediting", 0.0),
        ("recent-v2", V2, 40, "debiting", 0.0),  # not idle long enough
        ("parked-v2", V2, 3, "failed_needs_attention", 0.0),  # at rest
        ("done-v2", V2, 4, "completed", 0.0),
        ("other-type", DefinitionKey("order", 1, "h"), 12, "reserving", 0.0),
        ("moved-v2", V2, 6, "debiting", 0.0),  # its last event, appended below, is recent
    ]
    for saga_id, key, second, status, ttl in sagas:
        await saga_log.create(
            saga_id=saga_id,
            definition=key.definition,
            definition_version=key.version,
            definition_hash=key.shape_hash,
            params={},
            events=[SagaEvent(EventKind.STARTED, at=at(second))],
            status=status,
            owner="a",
            ttl=ttl,
        )
    await saga_log.append("moved-v2", [attempt(1)._replace(at=at(50))], status="debiting")
    cutoff = "2026-01-01T00:00:30.000000+00:00"  # the sweep's format: the log's, microseconds

    async def stranded(drivable: frozenset[DefinitionKey], limit: int = 10) -> list[str]:
        return await saga_log.stranded(drivable=drivable, idle_before=cutoff, limit=limit)

    assert await stranded(frozenset({V1})) == ["older-v2", "old-v2", "other-type"]
    assert await stranded(frozenset({V1}), limit=2) == ["older-v2", "old-v2"]
    assert await stranded(frozenset({V1, V2})) == ["other-type"]
    assert await stranded(frozenset()) == ["v1", "older-v2", "old-v2", "other-type"]
    assert await saga_log.stranded(drivable={V1}, idle_before=at(0), limit=10) == []
