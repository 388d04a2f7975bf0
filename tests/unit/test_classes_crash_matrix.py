"""The crash matrix over the CLASSES saga (assign -> enrol (pivot, settled by `void_enrol`)), in
process, as the order's (`test_order_crash_matrix.py`).

The participants are the real pupils and classes services (the participant kit's `perform`,
each on its own in-memory SQLite store) reached without HTTP (`tests.fakes.LocalParticipant`);
they outlive the orchestrator that "dies". For each fault scenario the first orchestrator is
killed before and after each remote call and before each saga-log write (`tests.crash_matrix`);
a fresh one recovers and the client re-submits. Then, at every point: the saga ends in the
scenario's outcome, the classes audit (`service_layer.class_audit`) and both services' own
audits are clean, each operation was applied at most once, and a completed saga placed the whole
group (assigned and on the roster) where any other placed nobody.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.classes import CLASS_ASSIGNMENT, CLASSES, PUPILS
from repository_after.domain.saga import SagaStatus
from repository_after.participant_kit import ParticipantService, Tx
from repository_after.service_layer.class_audit import ClassBooks, audit_classes
from repository_after.services import classes, pupils
from repository_after.services.pupils import GroupIn
from tests.crash_matrix import (
    Shape,
    call_points,
    crash_then_recover,
    open_accounts,
    orchestrator,
    write_points,
)
from tests.fakes import CrashingLog, Faults, LocalParticipant

GROUP = ["p1", "p2"]


def lost(operation: str, where: str, *, once: bool = False) -> Faults:
    return lambda op, n: where if op == operation and (n == 1 or not once) else None


def no_faults(_operation: str, _nth: int) -> None:
    return None


class Scenario(NamedTuple):
    faults: Faults
    outcome: SagaStatus
    class_id: str = "big"


DONE, UNDONE = SagaStatus.COMPLETED, SagaStatus.COMPENSATED
SCENARIOS = {
    "no faults": Scenario(no_faults, DONE),
    # void_enrol answers `voided`: the pupils are unassigned
    "enrol lost before, always": Scenario(lost("enrol", "before"), UNDONE),
    # void_enrol answers `already_applied`: the saga completes
    "enrol lost after, always": Scenario(lost("enrol", "after"), DONE),
    "enrol lost after, once": Scenario(lost("enrol", "after", once=True), DONE),
    # a compensatable step's unknown outcome is compensated: unassign finds the pupils
    "assign lost after, always": Scenario(lost("assign", "after"), UNDONE),
    "class full at enrol": Scenario(no_faults, UNDONE, class_id="small"),
    "pupil already placed": Scenario(no_faults, SagaStatus.REJECTED, class_id="taken"),
}
#: (remote calls, saga-log writes) of each scenario without a crash (see tests.crash_matrix)
SHAPES: dict[str, Shape] = {
    "no faults": (2, 3),
    "enrol lost before, always": (5, 6),
    "enrol lost after, always": (4, 5),
    "enrol lost after, once": (3, 4),
    "assign lost after, always": (3, 4),
    "class full at enrol": (3, 4),
    "pupil already placed": (1, 2),
}


@dataclass
class School:
    """The two services' stores, which outlive any orchestrator (and an account store, which
    the participant needs and this saga never calls)."""

    services: dict[str, ParticipantService]
    money: InMemoryAccountStore

    def participant(
        self, faults: Faults, at: int | None = None, after: bool = False
    ) -> LocalParticipant:
        return LocalParticipant(
            self.money, faults, crash_at_call=at, crash_after_apply=after, services=self.services
        )


@pytest.fixture
async def school() -> AsyncIterator[School]:
    kids, rooms = pupils.open_pupils(":memory:"), classes.open_classes(":memory:")
    try:
        await kids.store.transaction(lambda tx: pupils.register(tx, [*GROUP, "p0"]))
        for class_id, capacity in (("big", 5), ("small", 1), ("taken", 5)):
            await rooms.store.transaction(
                lambda tx, c=class_id, n=capacity: classes.open_class(tx, c, n)
            )
        # p2 is already in class "taken", by an earlier saga that completed
        earlier = GroupIn.model_validate({"class_id": "taken", "pupils": ["p2"]})
        assert (await kids.perform("assign", "s-0:assign", earlier)).status_code == 200
        assert (await rooms.perform("enrol", "s-0:enrol", earlier)).status_code == 200
        school = School({PUPILS: kids, CLASSES: rooms}, await open_accounts({"a": 1}))
        yield school
    finally:
        await kids.store.close()
        await rooms.store.close()


def group(scenario: str) -> list[str]:
    # "pupil already placed" asks for p2, in class "taken" already; the others for p0 and p1
    return GROUP if scenario == "pupil already placed" else ["p0", "p1"]


def params(scenario: str) -> dict[str, Any]:
    return {"class_id": SCENARIOS[scenario].class_id, "pupils": group(scenario)}


def applied(tx: Tx) -> Counter[str]:
    rows = tx.execute(
        "SELECT operation FROM participant_records WHERE applied = 1 AND key LIKE 's-1:%'"
    )
    return Counter(str(operation) for (operation,) in rows)


async def assert_books_balance(school: School, scenario: str, status: str) -> None:
    assert status == SCENARIOS[scenario].outcome
    kids, rooms = school.services[PUPILS], school.services[CLASSES]
    listed = await kids.store.read(lambda tx: pupils.list_pupils(tx, limit=100, after=None))
    rosters = await rooms.store.read(lambda tx: classes.list_classes(tx, limit=100, after=None))
    books = ClassBooks(
        pupils=listed,
        pupils_audit=(await kids.store.read(pupils.audit)).as_dict(),
        classes=rosters,
        classes_audit=(await rooms.store.read(classes.audit)).as_dict(),
        sagas={"s-0": "completed", "s-1": status},
    )
    assert audit_classes(books) == []
    done = await kids.store.read(applied) + await rooms.store.read(applied)
    assert max(done.values(), default=0) <= 1, done
    placed = {p["pupil_id"] for p in listed if str(p["assigned_key"]).startswith("s-1:")}
    on_roster = {
        row["pupil_id"]
        for c in rosters
        for row in c["roster"]
        if str(row["enrolled_key"]).startswith("s-1:")
    }
    if status == SagaStatus.COMPLETED:
        assert placed == on_roster == set(group(scenario))
        assert done["assign"] == done["enrol"] == 1
        assert done["unassign"] == 0
    else:
        assert placed == on_roster == set()
        assert done["enrol"] == 0
        assert done["unassign"] == done["assign"]


async def crash_recover_and_check(school: School, scenario: str, **point: Any) -> None:
    status, crashed = await crash_then_recover(
        lambda at, after: school.participant(SCENARIOS[scenario].faults, at, after),
        CLASS_ASSIGNMENT.name,
        params(scenario),
        saga_id="s-1",
        **point,
    )
    assert crashed
    await assert_books_balance(school, scenario, status)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_without_a_crash_every_classes_scenario_settles(
    school: School, scenario: str
) -> None:
    log = CrashingLog(InMemorySagaLog())
    participant = school.participant(SCENARIOS[scenario].faults)
    name = CLASS_ASSIGNMENT.name
    _, state = await orchestrator(log, participant).run(name, params(scenario), saga_id="s-1")
    assert (len(participant.calls), log.writes) == SHAPES[scenario]
    await assert_books_balance(school, scenario, state.status)


@pytest.mark.parametrize(("scenario", "call", "after_apply"), call_points(SHAPES))
async def test_a_group_crashed_at_any_remote_call_recovers_with_clean_books(
    school: School, scenario: str, call: int, after_apply: bool
) -> None:
    await crash_recover_and_check(school, scenario, call=call, after_apply=after_apply)


@pytest.mark.parametrize(("scenario", "write"), write_points(SHAPES))
async def test_a_group_crashed_before_any_log_write_recovers_with_clean_books(
    school: School, scenario: str, write: int
) -> None:
    await crash_recover_and_check(school, scenario, write=write)
