"""The participants A, B and C of the A → B → C saga (`domain/abc.py`): three small kit services,
one table each, every action switchable to fail (`services/switched.py`).

Each service keeps its own database (a SQLite file by default; `open_abc` takes what
`hosting.open_store` takes, a PostgreSQL or MariaDB URL too; `sagabank serve --role abc-a` serves
A alone, `entrypoints/participants.py`) with one business table, `entries`:
- `do` (the step's action; body `{"ref", "amount"}`, the saga's parameters): inserts the row of
  the call's key (`<saga id>:<step>`); answer `{"status": "done", "entry", "ref", "amount"}`;
- `undo` (its compensation; the kit hands it `do`'s recorded answer): deletes that row; answer
  `{"status": "undone", …}`. With no applied `do` the kit leaves its tombstone
  `nothing_to_compensate`, which refuses a late `do` (409 `transaction_compensated`).
The kit records every call in the same transaction as the row (exactly once per key, replays).

Invariant: a service's `entries` holds exactly the rows of its applied `do`s not undone; after a
saga at rest, the rows of a completed saga in all three tables, of a compensated or rejected one
in none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from repository_after.participant_kit import Compensation, ParticipantStore, Tx
from repository_after.services.hosting import open_store
from repository_after.services.switched import Journal, SwitchedService

#: The services of the saga, in the order its steps call them.
SERVICES = ("A", "B", "C")
MAX_AMOUNT = 10**12

#: Types every SQL dialect of the kit's stores takes (a key column of bounded length, BIGINT).
SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS entries (entry VARCHAR(128) PRIMARY KEY,"
    " ref VARCHAR(64) NOT NULL, amount BIGINT NOT NULL CHECK (amount > 0))",
)


class AbcIn(BaseModel):
    """The saga's parameters, and the body of every `do`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ref: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9._:\-]{1,64}$")]
    amount: Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)]


def do(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    tx.execute(
        "INSERT INTO entries (entry, ref, amount) VALUES (?, ?, ?)",
        (key, body["ref"], body["amount"]),
    )
    return {"status": "done", "entry": key, "ref": body["ref"], "amount": body["amount"]}


def undo(tx: Tx, _key: str, done: dict[str, Any]) -> dict[str, Any]:
    """Compensation of `do`: `done` is do's recorded answer."""
    tx.execute("DELETE FROM entries WHERE entry = ?", (done["entry"],))
    return {"status": "undone", "entry": done["entry"]}


def entries(tx: Tx) -> list[dict[str, Any]]:
    rows = tx.execute("SELECT entry, ref, amount FROM entries ORDER BY entry")
    return [{"entry": e, "ref": r, "amount": a} for e, r, a in rows]


def abc_service(name: str, store: ParticipantStore, journal: Journal) -> SwitchedService:
    service = SwitchedService(name, store, journal)
    service.action("do", AbcIn, do, compensation=Compensation("undo", undo))
    return service


def open_abc(name: str, database: Path | str, journal: Journal) -> SwitchedService:
    """Service `name` over `database` (a SQLite file path, or a URL `hosting.open_store`
    takes): the one place the matrix's store is chosen."""
    return abc_service(name, open_store(database, schema=SCHEMA, name=name.lower()), journal)
