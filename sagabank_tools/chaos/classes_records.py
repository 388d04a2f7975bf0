"""The classes saga's records check: each saga's final status against what both services hold.

Read from the pupils' and the classes services' databases after the services stopped (plain
SQL, `records.query`). A row belongs to the saga whose id prefixes its key (`<saga>:assign` on a
pupil, `<saga>:enrol` on a roster row). Per planned group:
- completed   => exactly its pupils are in its class under its `assign` key, and exactly they
                 are on that class's roster under its `enrol` key;
- compensated / rejected => no pupil holds its `assign` key and no roster row its `enrol` key;
and no pupil or roster row belongs to a saga outside the plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sagabank_tools.chaos.classes_plan import PlannedGroup
from sagabank_tools.chaos.records import query


def saga_of(key: str) -> str:
    return key.rpartition(":")[0]


@dataclass(frozen=True)
class ClassRecords:
    assigned: dict[str, set[tuple[str, str]]]  # assign key -> {(pupil, class)}
    enrolled: dict[str, set[tuple[str, str]]]  # enrol key -> {(pupil, class)}


def read(*, pupils: str, classes: str) -> ClassRecords:
    assigned: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for pupil, class_id, key in query(
        pupils, "SELECT pupil_id, class_id, assigned_key FROM pupils WHERE class_id IS NOT NULL"
    ):
        assigned[str(key)].add((str(pupil), str(class_id)))
    enrolled: dict[str, set[tuple[str, str]]] = defaultdict(set)
    roster = query(classes, "SELECT pupil_id, class_id, enrolled_key FROM roster")
    for pupil, class_id, key in roster:
        enrolled[str(key)].add((str(pupil), str(class_id)))
    return ClassRecords(dict(assigned), dict(enrolled))


def mismatches(
    statuses: Mapping[str, str], planned: Sequence[PlannedGroup], records: ClassRecords
) -> list[str]:
    """Every saga whose final status disagrees with the services' records, and every record
    that belongs to no saga of the plan."""
    sagas = {group.transaction_id for group in planned}
    found = [
        f"{kind} {key} belongs to no saga of the run"
        for kind, keys in (
            ("pupils assigned under", records.assigned),
            ("roster rows under", records.enrolled),
        )
        for key in keys
        if saga_of(key) not in sagas
    ]
    for group in planned:
        status = statuses.get(group.transaction_id)
        if status not in ("completed", "compensated", "rejected"):
            continue  # not settled: reported as such by the runner
        assigned = records.assigned.get(f"{group.transaction_id}:assign", set())
        enrolled = records.enrolled.get(f"{group.transaction_id}:enrol", set())
        whole = {(pupil, group.class_id) for pupil in group.pupils}
        expected = (whole, whole) if status == "completed" else (set(), set())
        if (assigned, enrolled) != expected:
            found.append(
                f"{group.transaction_id} is {status} but assigned {sorted(assigned)}, "
                f"enrolled {sorted(enrolled)}"
            )
    return found
