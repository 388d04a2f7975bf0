"""Versioned definitions: new sagas start on a type's latest version and the log keeps it; a saga
resumes with the version it started on, even after a newer one is registered; a server whose
registry defines a version its unfinished sagas started on with another shape refuses to start,
saying which type, which version, both hashes and how many sagas, while one that lacks the
version starts beside them, says so, and never claims them; and a saga started under another
shape of its version that a running server is asked to drive is parked there at once. (A version
the running server lacks: test_rolling_upgrade.py, test_stranded_sweep.py.)

In process: an in-memory participant that records each call (and can "die" on one), the memory
log for the engine, and a real SQLite file for `bootstrap`'s refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import bootstrap, saga_types
from repository_after.config import ProcessRole, Settings
from repository_after.domain.saga import (
    EventKind,
    Outcome,
    SagaDefinition,
    SagaEvent,
    SagaStatus,
    Step,
    StepKind,
)
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.orchestrator import Observer, Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import (
    CallResult,
    DefinitionInUse,
    DefinitionKey,
    Lease,
    SagaLog,
)
from repository_after.service_layer.saga_types import (
    DefinitionsChanged,
    SagaTypes,
    check_log_versions,
)
from tests.fakes import SimulatedCrash

POLICY = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)
START = SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")


class ShipIn(BaseModel):
    parcel: str


def ship(version: int, send: str) -> SagaDefinition:
    """A two-step saga; version 2 sends by another operation than version 1."""
    return SagaDefinition(
        "ship",
        (
            Step(
                "pack",
                "depot",
                "pack",
                "packing",
                {"parcel": "parcel"},
                StepKind.COMPENSATABLE,
                compensation="unpack",
            ),
            Step("send", "carrier", send, "sending", {"parcel": "parcel"}, StepKind.PIVOT),
        ),
        version=version,
    )


SHIP_V1, SHIP_V2 = ship(1, "send"), ship(2, "send_express")


def registry(*definitions: SagaDefinition) -> SagaTypes:
    types = SagaTypes()
    for definition in definitions:
        types.register(definition, ShipIn)
    return types


@dataclass
class Carrier:
    """Answers every call with success; "dies" at the call of `crash_on` (before it lands)."""

    crash_on: str | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        if operation == self.crash_on:
            raise SimulatedCrash(f"before {operation}")
        self.calls.append((service, operation))
        return CallResult(Outcome.SUCCEEDED, 200, None, {"status": "ok"})


def server(
    log: SagaLog,
    carrier: Carrier,
    types: SagaTypes,
    *,
    worker_id: str | None = None,
    lease_ttl: float = 10.0,
    observers: Sequence[Observer] = (),
    max_sagas: int = 1000,
) -> Orchestrator:
    return Orchestrator(
        log=log,
        participant=carrier,
        definitions=types.definitions(),
        versions=types,
        forward=POLICY,
        settle=POLICY,
        observers=observers,
        worker_id=worker_id,
        lease_ttl=lease_ttl,
        max_sagas=max_sagas,
    )


async def test_a_saga_resumes_with_the_version_it_started_on_after_a_new_one_is_registered() -> (
    None
):
    log = InMemorySagaLog()
    old = server(log, Carrier(crash_on="send"), registry(SHIP_V1))
    with pytest.raises(SimulatedCrash):
        await old.run("ship", {"parcel": "p-1"}, saga_id="s-old")
    stored = await log.load("s-old")
    assert stored is not None
    assert (stored.definition_version, stored.definition_hash) == (1, SHIP_V1.shape_hash())

    # Restarted with version 2 registered beside version 1.
    carrier = Carrier()
    new = server(log, carrier, registry(SHIP_V1, SHIP_V2))
    assert await new.recover() == {SagaStatus.COMPLETED: 1}
    assert carrier.calls == [("carrier", "send")]  # version 1's step, not version 2's

    carrier.calls.clear()
    _, state = await new.run("ship", {"parcel": "p-2"}, saga_id="s-new")
    assert state.status == SagaStatus.COMPLETED
    assert carrier.calls == [("depot", "pack"), ("carrier", "send_express")]
    started = await log.summary("s-new")
    assert started is not None
    assert (started.definition_version, started.definition_hash) == (2, SHIP_V2.shape_hash())
    assert SHIP_V1.shape_hash() != SHIP_V2.shape_hash()
    # Read back, each saga is folded with its own version's steps.
    stored = await log.load("s-old")
    assert stored is not None
    assert new.state_of(stored).status == SagaStatus.COMPLETED


async def test_without_a_version_lookup_only_the_definitions_own_versions_resume() -> None:
    log = InMemorySagaLog()
    old = server(log, Carrier(crash_on="send"), registry(SHIP_V1))
    with pytest.raises(SimulatedCrash):
        await old.run("ship", {"parcel": "p-1"}, saga_id="s-old")
    stored = await log.load("s-old")
    assert stored is not None
    latest_only = Orchestrator(
        log=log,
        participant=Carrier(),
        definitions={"ship": SHIP_V2},
        forward=POLICY,
        settle=POLICY,
        observers=(),
    )
    with pytest.raises(KeyError, match="saga type 'ship' version 1 is not registered"):
        latest_only.state_of(stored)
    same = Orchestrator(
        log=log,
        participant=Carrier(),
        definitions={"ship": SHIP_V1},
        forward=POLICY,
        settle=POLICY,
        observers=(),
    )
    assert same.state_of(stored).status == "sending"


def test_a_registry_names_each_version_it_cannot_resume_as_it_started() -> None:
    """(another shape under a registered version: refuses the start; a version or type not
    registered: reported, left to the servers that register it)."""
    types = registry(SHIP_V1, SHIP_V2)
    v1, v2 = SHIP_V1.shape_hash(), SHIP_V2.shape_hash()
    assert types.mismatches(
        [DefinitionInUse("ship", 1, v1, 4), DefinitionInUse("ship", 2, v2, 1)]
    ) == ([], [])
    elsewhere = (
        "a version this server does not register: left to the servers that do (never claimed "
        "here; parked after the unknown-version grace without progress if none drives them)"
    )
    assert types.mismatches(
        [
            DefinitionInUse("ship", 1, v2, 3),  # version 1 changed shape since they started
            DefinitionInUse("ship", 3, "0123456789abcdef", 1),  # a version it lacks
            DefinitionInUse("order", 1, "fedcba9876543210", 2),  # a type it lacks
        ]
    ) == (
        [
            f"saga type 'ship' version 1: 3 unfinished sagas started under shape {v2}, this "
            f"server defines {v1}: register the changed definition as a new version and keep "
            "version 1 as it was"
        ],
        [
            "saga type 'ship' version 3: 1 unfinished saga started under shape "
            f"0123456789abcdef, {elsewhere}",
            "saga type 'order' version 1: 2 unfinished sagas started under shape "
            f"fedcba9876543210, {elsewhere}",
        ],
    )


def test_a_registry_s_keys_are_every_registered_version_with_its_shape() -> None:
    """What its claims are limited to: each version, not only the latest."""
    assert registry(SHIP_V1, SHIP_V2).registered() == {
        DefinitionKey("ship", 1, SHIP_V1.shape_hash()),
        DefinitionKey("ship", 2, SHIP_V2.shape_hash()),
    }
    assert registry().registered() == frozenset()


def test_a_registry_says_in_a_few_words_how_one_saga_s_definition_differs() -> None:
    types = registry(SHIP_V1, SHIP_V2)
    v1, v2 = SHIP_V1.shape_hash(), SHIP_V2.shape_hash()
    assert types.shape_differs("ship", 1, v1) is None
    assert types.shape_differs("ship", 1, v2) == f"definition changed: this server defines {v1}"
    assert types.shape_differs("ship", 3, v1) == "version not defined here"
    assert types.shape_differs("order", 1, v1) == "version not defined here"


def test_the_refusal_fits_on_one_line_for_the_demo() -> None:
    refusal = DefinitionsChanged("refusing to start: head\n  first mismatch\n  second one")
    assert refusal.one_line() == "refusing to start: head: first mismatch; second one"


async def create(log: SagaLog, saga_id: str, definition: SagaDefinition, hash_: str) -> None:
    await log.create(
        saga_id=saga_id,
        definition=definition.name,
        definition_version=definition.version,
        definition_hash=hash_,
        params={"parcel": saga_id},
        events=[START],
        status="packing",
    )


async def test_the_start_up_check_looks_at_every_unfinished_saga_parked_ones_included() -> None:
    log = InMemorySagaLog()
    types = registry(SHIP_V1, SHIP_V2)
    await create(log, "fine", SHIP_V1, SHIP_V1.shape_hash())
    await check_log_versions(log, types)  # nothing to refuse

    changed = ship(1, "send_by_post").shape_hash()
    await create(log, "done", SHIP_V1, changed)
    await log.append("done", [], status=SagaStatus.COMPLETED)
    await check_log_versions(log, types)  # a finished saga never resumes: not a reason to refuse

    await create(log, "parked", SHIP_V1, changed)
    await log.append("parked", [], status=SagaStatus.FAILED_NEEDS_ATTENTION)
    with pytest.raises(DefinitionsChanged) as refused:
        await check_log_versions(log, types)
    assert str(refused.value) == (
        "refusing to start: the saga log holds unfinished sagas this server would resume with "
        "another shape than they started with\n"
        f"  saga type 'ship' version 1: 1 unfinished saga started under shape {changed}, this "
        f"server defines {SHIP_V1.shape_hash()}: register the changed definition as a new "
        "version and keep version 1 as it was"
    )
    await create(log, "parked-2", SHIP_V1, "feedfacefeedface")  # a third shape: a line each
    await log.append("parked-2", [], status=SagaStatus.FAILED_NEEDS_ATTENTION)
    with pytest.raises(DefinitionsChanged) as refused:
        await check_log_versions(log, types)
    header, *lines = str(refused.value).split("\n")
    assert header.endswith("another shape than they started with")
    assert sorted(lines) == sorted(
        f"  saga type 'ship' version 1: 1 unfinished saga started under shape {shape}, this "
        f"server defines {SHIP_V1.shape_hash()}: register the changed definition as a new "
        "version and keep version 1 as it was"
        for shape in (changed, "feedfacefeedface")
    )


async def test_a_server_starts_beside_unfinished_sagas_of_a_version_it_lacks_and_never_claims_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A newer release's saga (transfer version 2) in the log: this server (version 1) starts,
    says what it leaves (one warning per version), and its claims take its own version only."""
    db = tmp_path / "sagabank.db"
    log = SqliteSagaLog(db)
    try:
        await create(log, "t-1", TRANSFER, TRANSFER.shape_hash())
        await log.create(
            saga_id="t-2",
            definition="transfer",
            definition_version=2,
            definition_hash="0123456789abcdef",
            params={},
            events=[START],
            status="debiting",
        )
    finally:
        await log.close()
    values: dict[str, object] = {
        "database_url": f"sqlite:///{db}",
        "role": ProcessRole.ORCHESTRATOR,
        "admin_token": None,
        "service_token": None,
    }
    settings = Settings(**values)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="repository_after.bootstrap"):
        container = await bootstrap(settings)
    try:
        assert container.orchestrator is not None
        assert [r.getMessage() for r in caplog.records] == [
            "unfinished sagas of a version this server does not register: saga type 'transfer' "
            "version 2: 1 unfinished saga started under shape 0123456789abcdef, a version this "
            "server does not register: left to the servers that do (never claimed here; parked "
            "after the unknown-version grace without progress if none drives them)"
        ]
        assert await container.orchestrator.claim() == ["t-1"]
    finally:
        await container.close()


def test_the_servers_registry_defines_the_transfer_as_every_existing_log_stored_it() -> None:
    types = saga_types()
    in_use = [DefinitionInUse("transfer", 1, "c5a5f5add9f94254", 1)]  # the migration's backfill
    assert types.mismatches(in_use) == ([], [])
    assert registry(SHIP_V1).mismatches(in_use) != ([], [])


async def test_a_saga_started_under_another_shape_of_its_version_is_parked_here() -> None:
    """Another server, with another shape under the same version, started it after this one
    checked the log: this server neither drives it nor shows it with its own steps. While the
    other holds its lease, it is left alone; once the lease is free, it is parked, both shapes
    named, for an operator to retry on a server with its shape."""
    log = InMemorySagaLog()
    post = ship(1, "send_by_post")
    other = server(log, Carrier(crash_on="send_by_post"), registry(post))
    with pytest.raises(SimulatedCrash):
        await other.run("ship", {"parcel": "p-1"}, saga_id="s-1")
    carrier = Carrier()
    here = server(log, carrier, registry(SHIP_V1))
    refusal = (
        f"saga s-1: saga type 'ship' version 1 started under shape {post.shape_hash()}, "
        f"this server defines {SHIP_V1.shape_hash()}"
    )
    # the other server's lease still holds: not touched, answered as the log has it
    assert (await here.drive("s-1")).status == "sending"
    assert carrier.calls == []
    stored = await log.load("s-1")
    assert stored is not None
    with pytest.raises(DefinitionsChanged, match=f"^{refusal}$"):
        here.state_of(stored)
    assert (stored.status, stored.events[-1].kind) == ("sending", EventKind.OPERATION_STARTED)

    await log.release([Lease("s-1", other.worker_id, 1)])  # the other server's lease lapses
    state = await here.drive("s-1")
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION
    assert state.parked_reason == (
        f"saga type 'ship' version 1 started under shape {post.shape_hash()}, this server "
        f"defines {SHIP_V1.shape_hash()} (worker {here.worker_id}): retry it on a server that "
        "registers that version unchanged"
    )
    assert carrier.calls == []
    assert await log.claim("anyone", limit=10, ttl=30, take_over=True) == []
    resumed = server(log, Carrier(), registry(post))
    assert (await resumed.retry("s-1")).status == SagaStatus.COMPLETED


async def test_a_finished_saga_of_an_unknown_version_is_left_as_it_is() -> None:
    """Nothing to park: asked to drive it, this server answers it as the log has it and leaves
    no lease behind."""
    log = InMemorySagaLog()
    done = server(log, Carrier(), registry(SHIP_V1, SHIP_V2))
    await done.run("ship", {"parcel": "p-1"}, saga_id="s-9")
    here = server(log, Carrier(), registry(SHIP_V1))
    state = await here.drive("s-9")
    stored = await log.load("s-9")
    assert stored is not None
    assert (state.status, state.history) == (SagaStatus.COMPLETED, stored.events)
    assert (stored.status, stored.events[-1].kind) == (SagaStatus.COMPLETED, EventKind.ATTEMPT)
    assert await log.acquire("s-9", "operator", ttl=30) is not None  # no lease left behind
