"""SQLite adapter of the write-ahead saga log.

`sagas` holds one row per saga with its current status and a version (the number of events);
`saga_events` holds the append-only events, keyed by (saga_id, seq). `append` bumps the version and
inserts the events in one durable transaction, so the status column never disagrees with the
events (it is an index for listing and recovery, the events are the truth).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.domain.saga import SETTLED, SagaEvent
from repository_after.service_layer.saga_ports import SagaSummary, StoredSaga

SCHEMA = """
CREATE TABLE IF NOT EXISTS sagas (
    saga_id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sagas_by_status ON sagas (status, created_at);
CREATE TABLE IF NOT EXISTS saga_events (
    saga_id TEXT NOT NULL REFERENCES sagas (saga_id),
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (saga_id, seq)
) WITHOUT ROWID;
"""

_SUMMARY_COLUMNS = "saga_id, definition, params, status, created_at, updated_at"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _summary(row: tuple[Any, ...]) -> SagaSummary:
    return SagaSummary(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


def _insert_events(
    conn: sqlite3.Connection, saga_id: str, first_seq: int, events: Sequence[SagaEvent]
) -> None:
    conn.executemany(
        "INSERT INTO saga_events (saga_id, seq, data) VALUES (?, ?, ?)",
        [
            (saga_id, first_seq + i, json.dumps(e.as_dict(), separators=(",", ":")))
            for i, e in enumerate(events)
        ],
    )


class SqliteSagaLog:
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, schema=SCHEMA)

    async def create(
        self, *, saga_id: str, definition: str, params: dict[str, Any], event: SagaEvent
    ) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            now = _now()
            cursor = conn.execute(
                "INSERT INTO sagas (saga_id, definition, params, status, version, created_at,"
                " updated_at) VALUES (?, ?, ?, 'started', 1, ?, ?) ON CONFLICT DO NOTHING",
                (saga_id, definition, json.dumps(params), now, now),
            )
            if cursor.rowcount == 0:
                return False
            _insert_events(conn, saga_id, 1, [event])
            return True

        return await self._db.write(work)

    async def append(self, saga_id: str, events: Sequence[SagaEvent], *, status: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            (version,) = conn.execute(
                "UPDATE sagas SET version = version + ?, status = ?, updated_at = ?"
                " WHERE saga_id = ? RETURNING version",
                (len(events), status, _now(), saga_id),
            ).fetchone()
            _insert_events(conn, saga_id, version - len(events) + 1, events)

        await self._db.write(work)

    async def load(self, saga_id: str) -> StoredSaga | None:
        def work(conn: sqlite3.Connection) -> StoredSaga | None:
            row = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE saga_id = ?", (saga_id,)
            ).fetchone()
            if row is None:
                return None
            events = tuple(
                SagaEvent.from_dict(json.loads(data))
                for (data,) in conn.execute(
                    "SELECT data FROM saga_events WHERE saga_id = ? ORDER BY seq", (saga_id,)
                )
            )
            s = _summary(row)
            return StoredSaga(
                s.saga_id, s.definition, s.params, s.status, s.created_at, s.updated_at, events
            )

        return await self._db.read(work)

    async def summary(self, saga_id: str) -> SagaSummary | None:
        def work(conn: sqlite3.Connection) -> SagaSummary | None:
            row = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE saga_id = ?", (saga_id,)
            ).fetchone()
            return None if row is None else _summary(row)

        return await self._db.read(work)

    async def list_recent(
        self, *, status: str | None = None, limit: int = 100
    ) -> list[SagaSummary]:
        def work(conn: sqlite3.Connection) -> list[SagaSummary]:
            if status is None:
                rows = conn.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM sagas ORDER BY created_at DESC LIMIT ?",
                    (limit,),
                )
            else:
                rows = conn.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE status = ?"
                    " ORDER BY created_at DESC LIMIT ?",
                    (status, limit),
                )
            return [_summary(r) for r in rows]

        return await self._db.read(work)

    async def unsettled_ids(self) -> list[str]:
        settled = sorted(s.value for s in SETTLED)
        marks = ", ".join("?" for _ in settled)

        def work(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                f"SELECT saga_id FROM sagas WHERE status NOT IN ({marks}) ORDER BY created_at",
                settled,
            )
            return [r[0] for r in rows]

        return await self._db.read(work)

    async def count_by_status(self) -> dict[str, int]:
        def work(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT status, COUNT(*) FROM sagas GROUP BY status")
            return dict(rows)

        return await self._db.read(work)

    async def close(self) -> None:
        await self._db.close()
