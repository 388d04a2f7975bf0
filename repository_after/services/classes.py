"""The classes service, the roster side of the classes saga, built on the participant kit.

Classes and their rosters in their own database: a SQLite file by default, PostgreSQL by URL.
A roster row is keyed by its pupil (a PRIMARY KEY), so no pupil is on two rosters, by
constraint. Operations (`participant_kit`: each recorded once per key in the same transaction
as the roster's change, replayed, fenced by tombstones):
- `enrol` (action, the saga's pivot; body `{"class_id", "pupils"}` as `assign`'s): the group is
  added to the class's roster under the call's key; answer `{"status": "enrolled", "class_id",
  "pupils", "enrolled", "capacity"}`. A class that would pass its capacity is the definite
  refusal 409 `class_full`; an unknown class 409 `class_not_found`; a pupil already on a roster
  409 `pupil_enrolled`. Nobody is added then.
- `void_enrol` (its settlement, the kit's): `voided` before (or after a refused) `enrol`, a
  tombstone that refuses a late one (409 `transaction_voided`); `already_applied` after one.
Plus `open_class` (open a class with a capacity, or change it, never below its roster),
`find_class`, `list_classes` (a page by id, each with its roster) and `audit`, served by its
HTTP edge (`services.classes_http`).

Invariants (`audit`): no class holds more pupils than its capacity; every roster row was added
by the applied `enrol` of its key, which names that pupil and class; every pupil of an applied
`enrol` is on that class's roster under its key (a record retention purged counts against the
purged totals: `participant_kit.retention.Unrecorded`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from repository_after.participant_kit import ParticipantService, ParticipantStore, Refusal, Tx
from repository_after.participant_kit.records import applied_records
from repository_after.participant_kit.retention import Unrecorded
from repository_after.services.hosting import open_store
from repository_after.services.pupils import EntityId, GroupIn

MAX_CAPACITY = 1000
MAX_LIST = 100

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS classes (class_id TEXT PRIMARY KEY,"
    " capacity INTEGER NOT NULL CHECK (capacity >= 1))",
    "CREATE TABLE IF NOT EXISTS roster (pupil_id TEXT PRIMARY KEY,"
    " class_id TEXT NOT NULL REFERENCES classes (class_id), enrolled_key TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS roster_by_class ON roster (class_id, pupil_id)",
)


class ClassIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    class_id: EntityId
    capacity: Annotated[StrictInt, Field(ge=1, le=MAX_CAPACITY)]


def _roster(tx: Tx, class_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT pupil_id, enrolled_key FROM roster WHERE class_id = ? ORDER BY pupil_id",
        (class_id,),
    )
    return [{"pupil_id": pupil_id, "enrolled_key": key} for pupil_id, key in rows]


def find_class(tx: Tx, class_id: str) -> dict[str, Any] | None:
    """The class, its capacity and its roster, or None (a read: no row lock)."""
    rows = tx.execute("SELECT capacity FROM classes WHERE class_id = ?", (class_id,))
    if not rows:
        return None
    roster = _roster(tx, class_id)
    return {"class_id": class_id, "capacity": int(rows[0][0]), "roster": roster}


def enrol(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    class_id, pupils = body["class_id"], body["pupils"]
    # The class row locked first (PostgreSQL): two groups for one class decide one after the
    # other, so both cannot see the last places free.
    rows = tx.execute(
        "SELECT capacity FROM classes WHERE class_id = ?" + tx.for_update, (class_id,)
    )
    if not rows:
        raise Refusal("class_not_found", f"no class {class_id!r}")
    capacity = int(rows[0][0])
    marks = ", ".join("?" for _ in pupils)
    taken = tx.execute(
        f"SELECT pupil_id, class_id FROM roster WHERE pupil_id IN ({marks}) ORDER BY pupil_id",
        tuple(pupils),
    )
    if taken:
        raise Refusal("pupil_enrolled", f"pupil {taken[0][0]!r} is on class {taken[0][1]!r}")
    enrolled = int(tx.execute("SELECT COUNT(*) FROM roster WHERE class_id = ?", (class_id,))[0][0])
    if enrolled + len(pupils) > capacity:
        raise Refusal(
            "class_full",
            f"class {class_id!r}: {enrolled} of {capacity} places taken, {len(pupils)} asked",
        )
    for pupil_id in pupils:
        tx.execute(
            "INSERT INTO roster (pupil_id, class_id, enrolled_key) VALUES (?, ?, ?)",
            (pupil_id, class_id, key),
        )
    return {
        "status": "enrolled",
        "class_id": class_id,
        "pupils": list(pupils),
        "enrolled": enrolled + len(pupils),
        "capacity": capacity,
    }


def open_class(tx: Tx, class_id: str, capacity: int) -> dict[str, Any]:
    """Open `class_id` with `capacity` places, or set a known one's; never below its roster."""
    rows = tx.execute(
        "SELECT capacity FROM classes WHERE class_id = ?" + tx.for_update, (class_id,)
    )
    if not rows:
        tx.execute("INSERT INTO classes (class_id, capacity) VALUES (?, ?)", (class_id, capacity))
    else:
        held = int(tx.execute("SELECT COUNT(*) FROM roster WHERE class_id = ?", (class_id,))[0][0])
        if held > capacity:
            raise Refusal(
                "capacity_below_roster", f"class {class_id!r} holds {held}, above {capacity}"
            )
        tx.execute("UPDATE classes SET capacity = ? WHERE class_id = ?", (capacity, class_id))
    found = find_class(tx, class_id)
    assert found is not None  # written just above, in this transaction
    return found


def list_classes(tx: Tx, *, limit: int, after: str | None) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT class_id FROM classes WHERE class_id > ? ORDER BY class_id LIMIT ?",
        (after or "", limit),
    )
    return [found for (class_id,) in rows if (found := find_class(tx, str(class_id))) is not None]


@dataclass
class ClassesAudit:
    """What `audit` found; `ok` when nothing is wrong."""

    classes: int = 0
    enrolled: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "classes": self.classes,
            "enrolled": self.enrolled,
            "violations": self.violations,
        }


def audit(tx: Tx) -> ClassesAudit:
    report = ClassesAudit()
    capacity = {str(c): int(n) for c, n in tx.execute("SELECT class_id, capacity FROM classes")}
    roster = [
        (str(p), str(c), str(k))
        for p, c, k in tx.execute("SELECT pupil_id, class_id, enrolled_key FROM roster")
    ]
    report.classes, report.enrolled = len(capacity), len(roster)
    held: dict[str, int] = {}
    for _, class_id, _ in roster:
        held[class_id] = held.get(class_id, 0) + 1
    for class_id, n in sorted(held.items()):
        if n > capacity.get(class_id, 0):
            report.violations.append(
                f"class {class_id!r} holds {n} pupils, capacity {capacity.get(class_id, 0)}"
            )
    enrolled = {key: orjson.loads(body) for key, body in applied_records(tx, "enrol")}
    unrecorded = Unrecorded(tx, ("enrol",))
    by_key: dict[str, set[str]] = {}
    for pupil_id, class_id, key in sorted(roster):
        by_key.setdefault(key, set()).add(pupil_id)
        answer = enrolled.get(key)
        name = f"pupil {pupil_id!r} is on class {class_id!r} under {key!r}"
        if answer is None:
            unrecorded.add("enrol", f"{name}, which has no applied enrol")
        elif answer["class_id"] != class_id or pupil_id not in answer["pupils"]:
            report.violations.append(f"{name}, whose enrol added {answer['pupils']} elsewhere")
    report.violations += unrecorded.violations()
    for key, answer in sorted(enrolled.items()):
        missing = sorted(set(answer["pupils"]) - by_key.get(key, set()))
        if missing:
            report.violations.append(f"enrol {key!r} applied but {missing} are not on its roster")
    return report


def classes_service(store: ParticipantStore) -> ParticipantService:
    service = ParticipantService("classes", store)
    service.action("enrol", GroupIn, enrol, settlement="void_enrol")
    return service


def open_classes(database: Path | str) -> ParticipantService:
    """The service over a SQLite file (a path) or a PostgreSQL database (a `postgresql://` URL)."""
    return classes_service(open_store(database, schema=SCHEMA, name="classes"))
