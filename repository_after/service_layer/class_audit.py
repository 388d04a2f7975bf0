"""The classes saga's invariants, across the pupils' and the classes services' own reads.

`audit_classes(books)` takes what each participant says about itself (its pages of pupils or
classes and its `GET /audit`) and what the orchestrator says about each saga, and returns one
line per broken invariant:

1. a pupil is in at most one class: listed once by the pupils service, on at most one roster;
2. every roster equals the pupils assigned to it: a pupil is on a class's roster if and only if
   the pupils service has it in that class, and both rows come from one saga (the roster row's
   `enrolled_key` and the pupil's `assigned_key` name the same saga id). A pupil assigned but
   not yet on a roster is allowed only while its saga still runs (given and not at rest);
3. no class holds more pupils than its capacity;
4. no half-done assignment once its saga settled (at rest: terminal, or parked for an
   operator): a completed saga's pupils are all assigned under its `assign` key AND on its
   class's roster under its `enrol` key, the same non-empty group; a compensated or rejected
   one left no pupil assigned and no roster row under its keys; any other at rest (parked,
   resolved) is all or nothing;
and each service's own audit is clean (its rows match the calls it applied).

A saga's keys are `<saga id>:assign` and `<saga id>:enrol` (`domain.classes`, `KeyScheme.STEP`).
Rows of sagas not in `sagas` (an earlier run's) are held to rules 1-3 only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repository_after.domain.saga_definition import AT_REST, SagaStatus

Json = Mapping[str, Any]


@dataclass(frozen=True)
class ClassBooks:
    """What the services say, as their HTTP reads answer it.

    `pupils`: every row of the pupils service's `GET /pupils` pages (`pupil_id`, `class_id`,
    `assigned_key`); `pupils_audit`: its `GET /audit`; `classes`: every class of the classes
    service's `GET /classes` pages (`class_id`, `capacity`, `roster`: `[{"pupil_id",
    "enrolled_key"}]`); `classes_audit`: its `GET /audit`; `sagas`: saga id -> its status."""

    pupils: Sequence[Json]
    pupils_audit: Json
    classes: Sequence[Json]
    classes_audit: Json
    sagas: Mapping[str, str] = field(default_factory=dict)


def saga_of(key: str) -> str:
    return key.rpartition(":")[0]


def _one_class_each(books: ClassBooks) -> list[str]:
    found = []
    listed: dict[str, int] = defaultdict(int)
    for pupil in books.pupils:
        listed[str(pupil["pupil_id"])] += 1
    found += [f"pupil {p!r} is listed {n} times" for p, n in sorted(listed.items()) if n > 1]
    rosters: dict[str, list[str]] = defaultdict(list)
    for one in books.classes:
        for row in one["roster"]:
            rosters[str(row["pupil_id"])].append(str(one["class_id"]))
    found += [
        f"pupil {p!r} is on the rosters of {sorted(c)}"
        for p, c in sorted(rosters.items())
        if len(c) > 1
    ]
    return found


def _rosters_match(books: ClassBooks) -> list[str]:
    found = []
    assigned = {str(p["pupil_id"]): p for p in books.pupils if p["class_id"] is not None}
    on_roster = {
        str(row["pupil_id"]): (str(one["class_id"]), str(row["enrolled_key"]))
        for one in books.classes
        for row in one["roster"]
    }
    for pupil_id, (class_id, key) in sorted(on_roster.items()):
        pupil = assigned.get(pupil_id)
        if pupil is None:
            found.append(f"pupil {pupil_id!r} is on class {class_id!r}'s roster, in no class")
        elif pupil["class_id"] != class_id:
            found.append(
                f"pupil {pupil_id!r} is on class {class_id!r}'s roster, in {pupil['class_id']!r}"
            )
        elif saga_of(str(pupil["assigned_key"])) != saga_of(key):
            found.append(
                f"pupil {pupil_id!r} was assigned by {pupil['assigned_key']!r}, enrolled by {key!r}"
            )
    for pupil_id, pupil in sorted(assigned.items()):
        if pupil_id in on_roster:
            continue
        saga = saga_of(str(pupil["assigned_key"]))
        status = books.sagas.get(saga)
        if status is None or status in AT_REST:
            found.append(
                f"pupil {pupil_id!r} is in class {pupil['class_id']!r} but on no roster "
                f"(saga {saga!r} {status or 'unknown'})"
            )
    return found


def _within_capacity(books: ClassBooks) -> list[str]:
    return [
        f"class {one['class_id']!r} holds {len(one['roster'])} pupils, capacity {one['capacity']}"
        for one in books.classes
        if len(one["roster"]) > int(one["capacity"])
    ]


def _settled_whole(books: ClassBooks) -> list[str]:
    found = []
    assigned: dict[str, set[str]] = defaultdict(set)
    for pupil in books.pupils:
        if pupil["assigned_key"] is not None:
            assigned[str(pupil["assigned_key"])].add(str(pupil["pupil_id"]))
    enrolled: dict[str, set[str]] = defaultdict(set)
    for one in books.classes:
        for row in one["roster"]:
            enrolled[str(row["enrolled_key"])].add(str(row["pupil_id"]))
    for saga, status in sorted(books.sagas.items()):
        if status not in AT_REST:
            continue
        pupils = assigned.get(f"{saga}:assign", set())
        roster = enrolled.get(f"{saga}:enrol", set())
        shown = f"saga {saga!r} is {status}: assigned {sorted(pupils)}, enrolled {sorted(roster)}"
        if status == SagaStatus.COMPLETED:
            if not pupils or pupils != roster:
                found.append(shown)
        elif status in (SagaStatus.COMPENSATED, SagaStatus.REJECTED):
            if pupils or roster:
                found.append(shown)
        elif pupils != roster:
            found.append(shown)
    return found


def audit_classes(books: ClassBooks) -> list[str]:
    violations = _one_class_each(books)
    violations += _rosters_match(books)
    violations += _within_capacity(books)
    violations += _settled_whole(books)
    violations += [f"pupils: {v}" for v in books.pupils_audit["violations"]]
    violations += [f"classes: {v}" for v in books.classes_audit["violations"]]
    return violations
