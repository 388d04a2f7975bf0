"""Answers and the records that replay them: one row of `participant_records` per (operation,
key), the request it answered (canonical JSON) and the exact bytes sent back.

A record is written (`put`) in the transaction of the business change it answers, so the two
commit together or not at all (`storage`); `get` finds it again for a replay, a fence or a
compensation. `ParticipantService` (`core`) decides what to record; this module only reads and
writes the rows and builds the answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar

import orjson

from repository_after.participant_kit.storage import Tx

Body = dict[str, Any]
TxB = TypeVar("TxB", contravariant=True)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the caller is told: the status, the exact body bytes, and whether it is a replay."""

    status_code: int
    body: bytes
    replayed: bool = False

    def json(self) -> Body:
        value: Body = orjson.loads(self.body)
        return value


class Record(NamedTuple):
    request: str
    status_code: int
    body: str
    applied: bool

    def answer(self) -> Answer:
        return Answer(self.status_code, self.body.encode(), replayed=True)


def error_body(code: str, message: str) -> Body:
    return {"error": code, "message": message}


def error(status_code: int, code: str, message: str) -> Answer:
    return Answer(status_code, orjson.dumps(error_body(code, message)))


def canonical(body: Mapping[str, Any] | None) -> str:
    """The request as recorded: sorted keys, no spaces; `null` for a call without a body."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


_GET = "SELECT request, status_code, body, applied FROM participant_records"
_GET += " WHERE operation = ? AND key = ?"
_PUT = (
    "INSERT INTO participant_records (operation, key, request, status_code, body, applied,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class Book(Protocol[TxB]):
    """Where a participant's records live (the rules read and write them only through this).

    `get` returns the record of (operation, key), or None; `put` records an answer and returns
    it as sent. Both run inside the call's transaction `tx`. The kit's own book is
    `SQL_BOOK` (the `participant_records` table); a service with records of its own (the
    account service, whose purged records are rebuilt from its ledger) brings its own."""

    def get(self, tx: TxB, operation: str, key: str, /) -> Record | None: ...

    def put(
        self,
        tx: TxB,
        operation: str,
        key: str,
        request: str,
        status_code: int,
        body: Body,
        applied: bool,
        /,
    ) -> Answer: ...


def get(tx: Tx, operation: str, key: str) -> Record | None:
    rows = tx.execute(_GET, (operation, key))
    if not rows:
        return None
    request, status_code, body, applied = rows[0]
    return Record(str(request), int(status_code), str(body), bool(applied))


def applied_records(tx: Tx, operation: str) -> list[tuple[str, str]]:
    """(key, answer body) of every applied call of `operation` still recorded (retention may
    have purged older ones: `retention.Unrecorded`)."""
    rows = tx.execute(
        "SELECT key, body FROM participant_records WHERE operation = ? AND applied = 1",
        (operation,),
    )
    return [(str(key), str(body)) for key, body in rows]


def put(
    tx: Tx, operation: str, key: str, request: str, status_code: int, body: Body, applied: bool
) -> Answer:
    raw = orjson.dumps(body)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    tx.execute(_PUT, (operation, key, request, status_code, raw.decode(), int(applied), now))
    return Answer(status_code, raw)


class SqlBook:
    """The kit's records in `participant_records`, through the service's SQL `Tx`."""

    def get(self, tx: Tx, operation: str, key: str, /) -> Record | None:
        return get(tx, operation, key)

    def put(
        self,
        tx: Tx,
        operation: str,
        key: str,
        request: str,
        status_code: int,
        body: Body,
        applied: bool,
        /,
    ) -> Answer:
        return put(tx, operation, key, request, status_code, body, applied)


SQL_BOOK = SqlBook()
