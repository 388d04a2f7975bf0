"""The pupils service, a participant of the classes saga built on the participant kit.

Pupils in their own database: a SQLite file by default, PostgreSQL by URL. A pupil is in at
most one class: its row holds that class and the key of the `assign` that put it there (both
set or both empty, a CHECK). Operations (`participant_kit`: each recorded once per key in the
same transaction as the pupils' change, replayed, fenced by tombstones):
- `assign` (action; body: `class_id` and `pupils`, 1..50 distinct pupil ids): every pupil of the
  group is put in the class under the call's key; answer `{"status": "assigned", "class_id",
  "pupils"}`. A pupil never registered is the definite refusal 409 `pupil_not_found`, one
  already in a class (any class, under any other key) 409 `pupil_assigned`; either way nobody
  is assigned.
- `unassign` (its compensation): the pupils this key assigned are in no class again; answer
  `{"status": "unassigned", "class_id", "pupils"}`. With nothing assigned under the key it
  leaves the kit's tombstone `nothing_to_compensate`, which refuses a late `assign` (409).
Plus `register` (admin: pupils in no class), `find_pupil`, `list_pupils` (a page by id) and
`audit`, which its HTTP edge serves (`services.pupils_http`).

Invariants (`audit`): every pupil in a class was put there by the applied `assign` of its key,
which names it and that class, and no applied `unassign` undid that key; every pupil of an
applied `assign` that no `unassign` undid is in its class under its key (a record retention
purged counts against the purged totals: `participant_kit.retention.Unrecorded`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from repository_after.domain.ids import ACCOUNT_ID_PATTERN
from repository_after.participant_kit import (
    Compensation,
    ParticipantService,
    ParticipantStore,
    Refusal,
    Tx,
)
from repository_after.participant_kit.records import applied_records
from repository_after.participant_kit.retention import Unrecorded
from repository_after.services.hosting import open_store

MAX_GROUP = 50
MAX_LIST = 1000
MAX_REGISTER = 1000

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS pupils (pupil_id TEXT PRIMARY KEY, class_id TEXT,"
    " assigned_key TEXT, CHECK ((class_id IS NULL) = (assigned_key IS NULL)))",
    # `unassign` finds a group's pupils by the key that assigned them: without it, a scan of
    # every pupil per compensation.
    "CREATE INDEX IF NOT EXISTS pupils_by_key ON pupils (assigned_key)",
)

EntityId = Annotated[
    StrictStr, Field(pattern=ACCOUNT_ID_PATTERN.pattern, description="1-64 of [A-Za-z0-9._:-]")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GroupIn(_Strict):
    """A group of pupils for a class: the classes saga's parameters, the body of `assign` and of
    `enrol` (1..50 pupils, each once)."""

    class_id: EntityId
    pupils: Annotated[list[EntityId], Field(min_length=1, max_length=MAX_GROUP)]

    @model_validator(mode="after")
    def _distinct_pupils(self) -> GroupIn:
        if len(set(self.pupils)) != len(self.pupils):
            raise ValueError("each pupil appears once in a group")
        return self


class RegisterIn(_Strict):
    pupils: Annotated[list[EntityId], Field(min_length=1, max_length=MAX_REGISTER)]


_COLUMNS = ("pupil_id", "class_id", "assigned_key")


def find_pupil(tx: Tx, pupil_id: str) -> dict[str, Any] | None:
    rows = tx.execute(
        "SELECT pupil_id, class_id, assigned_key FROM pupils WHERE pupil_id = ?", (pupil_id,)
    )
    return dict(zip(_COLUMNS, rows[0], strict=True)) if rows else None


def assign(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    class_id, pupils = body["class_id"], body["pupils"]
    # Every pupil checked (and, on PostgreSQL, locked: in id order, so two groups never wait on
    # each other) before anyone is assigned.
    for pupil_id in sorted(pupils):
        rows = tx.execute(
            "SELECT class_id FROM pupils WHERE pupil_id = ?" + tx.for_update, (pupil_id,)
        )
        if not rows:
            raise Refusal("pupil_not_found", f"no pupil {pupil_id!r}")
        if rows[0][0] is not None:
            raise Refusal("pupil_assigned", f"pupil {pupil_id!r} is in class {rows[0][0]!r}")
    for pupil_id in pupils:
        tx.execute(
            "UPDATE pupils SET class_id = ?, assigned_key = ? WHERE pupil_id = ?",
            (class_id, key, pupil_id),
        )
    return {"status": "assigned", "class_id": class_id, "pupils": list(pupils)}


def unassign(tx: Tx, key: str, assigned: dict[str, Any]) -> dict[str, Any]:
    """Compensation of `assign` (`assigned`: its recorded answer): only the rows this very key
    assigned are cleared; nothing else ever moves a pupil out of a class."""
    tx.execute(
        "UPDATE pupils SET class_id = NULL, assigned_key = NULL WHERE assigned_key = ?", (key,)
    )
    return {"status": "unassigned", "class_id": assigned["class_id"], "pupils": assigned["pupils"]}


def register(tx: Tx, pupils: list[str]) -> dict[str, Any]:
    """Register the pupils not yet known, in no class; those known are left as they are."""
    added = 0
    for pupil_id in pupils:
        if not tx.execute("SELECT 1 FROM pupils WHERE pupil_id = ?" + tx.for_update, (pupil_id,)):
            # Two registrations of one new pupil at once (PostgreSQL): the second inserts nothing.
            tx.execute(
                "INSERT INTO pupils (pupil_id, class_id, assigned_key) VALUES (?, NULL, NULL)"
                " ON CONFLICT (pupil_id) DO NOTHING",
                (pupil_id,),
            )
            added += 1
    return {"registered": added, "known": len(pupils) - added}


def list_pupils(tx: Tx, *, limit: int, after: str | None) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT pupil_id, class_id, assigned_key FROM pupils WHERE pupil_id > ?"
        " ORDER BY pupil_id LIMIT ?",
        (after or "", limit),
    )
    return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]


@dataclass
class PupilsAudit:
    """What `audit` found; `ok` when nothing is wrong."""

    pupils: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "pupils": self.pupils, "violations": self.violations}


def audit(tx: Tx) -> PupilsAudit:
    report = PupilsAudit()
    rows = [
        (str(p), c and str(c), k and str(k))
        for p, c, k in tx.execute("SELECT pupil_id, class_id, assigned_key FROM pupils")
    ]
    report.pupils = {
        "in_a_class": sum(c is not None for _, c, _ in rows),
        "in_no_class": sum(c is None for _, c, _ in rows),
    }
    assigned = {key: orjson.loads(body) for key, body in applied_records(tx, "assign")}
    undone = {key for key, _ in applied_records(tx, "unassign")}
    unrecorded = Unrecorded(tx, ("assign",))
    holders: dict[str, set[str]] = {}
    for pupil_id, class_id, key in sorted(rows):
        if key is None:
            continue
        holders.setdefault(key, set()).add(pupil_id)
        answer = assigned.get(key)
        name = f"pupil {pupil_id!r} is in class {class_id!r} under {key!r}"
        if answer is None:
            unrecorded.add("assign", f"{name}, which has no applied assign")
        elif answer["class_id"] != class_id or pupil_id not in answer["pupils"]:
            report.violations.append(f"{name}, whose assign put {answer['pupils']} elsewhere")
        if key in undone:
            report.violations.append(f"{name}, which an applied unassign undid")
    report.violations += unrecorded.violations()
    for key, answer in sorted(assigned.items()):
        if key in undone:
            continue
        missing = sorted(set(answer["pupils"]) - holders.get(key, set()))
        if missing:
            report.violations.append(f"assign {key!r} applied but {missing} are not its")
    return report


def pupils_service(store: ParticipantStore) -> ParticipantService:
    service = ParticipantService("pupils", store)
    service.action("assign", GroupIn, assign, compensation=Compensation("unassign", unassign))
    return service


def open_pupils(database: Path | str) -> ParticipantService:
    """The service over a SQLite file (a path) or a PostgreSQL database (a `postgresql://` URL)."""
    return pupils_service(open_store(database, schema=SCHEMA, name="pupils"))
