"""SQLite adapter of the write-ahead saga log.

`sagas` holds one row per saga with its current status and a version (the number of events);
`saga_events` holds the append-only events, keyed by (saga_id, seq). `append` bumps the version and
inserts the events in one durable transaction, so the status column never disagrees with the
events (it is an index for listing and recovery, the events are the truth).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.domain.saga import SETTLED, TERMINAL, SagaEvent
from repository_after.service_layer.saga_ports import (
    Lease,
    LeaseLost,
    SagaSummary,
    StoredSaga,
    event_times,
)

_SETTLED = sorted(s.value for s in SETTLED)
_TERMINAL = sorted(s.value for s in TERMINAL)
_SETTLED_MARKS = ", ".join("?" for _ in _SETTLED)
_SUMMARY_COLUMNS = "saga_id, definition, params, status, created_at, updated_at"


def _encode(data: dict[str, Any]) -> str:
    """Compact JSON text; orjson, as events are encoded several times per transfer and the
    standard library's encoder cost 10 x more (docs/performance.md)."""
    return orjson.dumps(data).decode()


def _summary(row: tuple[Any, ...]) -> SagaSummary:
    return SagaSummary(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


def _insert_events(
    conn: sqlite3.Connection, saga_id: str, first_seq: int, events: Sequence[SagaEvent]
) -> None:
    conn.executemany(
        "INSERT INTO saga_events (saga_id, seq, data) VALUES (?, ?, ?)",
        [(saga_id, first_seq + i, _encode(e.as_dict())) for i, e in enumerate(events)],
    )


class SqliteSagaLog:
    def __init__(self, path: Path, *, share: SqliteDatabase | None = None) -> None:
        """`share`: use that database's connection and writer thread (same file)."""
        self._db = share.share("sagas") if share else SqliteDatabase(path, component="sagas")

    async def create(
        self,
        *,
        saga_id: str,
        definition: str,
        params: dict[str, Any],
        events: Sequence[SagaEvent],
        status: str = "started",
        owner: str = "",
        ttl: float = 0.0,
    ) -> Lease | None:
        created_at, updated_at = event_times(events)

        def work(conn: sqlite3.Connection) -> Lease | None:
            cursor = conn.execute(
                "INSERT INTO sagas (saga_id, definition, params, status, version, created_at,"
                " updated_at, owner, lease_until, fence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT DO NOTHING",
                (
                    saga_id,
                    definition,
                    _encode(params),
                    status,
                    len(events),
                    created_at,
                    updated_at,
                    owner,
                    time.time() + ttl,
                ),
            )
            if cursor.rowcount == 0:
                return None
            _insert_events(conn, saga_id, 1, events)
            return Lease(saga_id, owner, 1)

        return await self._db.write(work, short=True)

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            sql = (
                "UPDATE sagas SET version = version + ?, status = ?, updated_at = ?"
                + (", owner = NULL, lease_until = NULL" if release else "")
                + " WHERE saga_id = ?"
            )
            args: tuple[Any, ...] = (len(events), status, event_times(events)[1], saga_id)
            if lease is not None:
                sql += " AND owner = ? AND fence = ?"
                args += (lease.owner, lease.fence)
            row = conn.execute(sql + " RETURNING version", args).fetchone()
            if row is None:
                raise LeaseLost(f"saga {saga_id}: lease {lease} no longer holds")
            _insert_events(conn, saga_id, row[0] - len(events) + 1, events)

        await self._db.write(work, short=True)

    async def claim(
        self, owner: str, *, limit: int, ttl: float, include_own: bool = False
    ) -> list[Lease]:
        def work(conn: sqlite3.Connection) -> list[Lease]:
            now = time.time()
            rows = conn.execute(
                "UPDATE sagas SET owner = ?, lease_until = ?, fence = fence + 1"
                " WHERE saga_id IN (SELECT saga_id FROM sagas"
                f" WHERE status NOT IN ({_SETTLED_MARKS})"
                " AND (owner IS NULL OR lease_until < ? OR (? AND owner = ?))"
                " ORDER BY created_at LIMIT ?) RETURNING saga_id, fence",
                (owner, now + ttl, *_SETTLED, now, include_own, owner, limit),
            ).fetchall()
            return [Lease(saga_id, owner, fence) for saga_id, fence in rows]

        return await self._db.write(work)

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        def work(conn: sqlite3.Connection) -> Lease | None:
            now = time.time()
            row = conn.execute(
                "UPDATE sagas SET owner = ?, lease_until = ?, fence = fence + 1"
                " WHERE saga_id = ? AND (owner IS NULL OR lease_until < ?) RETURNING fence",
                (owner, now + ttl, saga_id, now),
            ).fetchone()
            return None if row is None else Lease(saga_id, owner, row[0])

        return await self._db.write(work, short=True)

    async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
        def work(conn: sqlite3.Connection) -> set[str]:
            until = time.time() + ttl
            held = set()
            for lease in leases:
                row = conn.execute(
                    "UPDATE sagas SET lease_until = ? WHERE saga_id = ? AND owner = ?"
                    " AND fence = ? RETURNING saga_id",
                    (until, lease.saga_id, lease.owner, lease.fence),
                ).fetchone()
                if row is not None:
                    held.add(lease.saga_id)
            return held

        return await self._db.write(work) if leases else set()

    async def release(self, leases: Sequence[Lease]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE sagas SET owner = NULL, lease_until = NULL"
                " WHERE saga_id = ? AND owner = ? AND fence = ?",
                [(lease.saga_id, lease.owner, lease.fence) for lease in leases],
            )

        if leases:
            await self._db.write(work, short=True)

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

        return await self._db.read(work, short=True)

    async def summary(self, saga_id: str) -> SagaSummary | None:
        def work(conn: sqlite3.Connection) -> SagaSummary | None:
            row = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE saga_id = ?", (saga_id,)
            ).fetchone()
            return None if row is None else _summary(row)

        return await self._db.read(work, short=True)

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
        def work(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                f"SELECT saga_id FROM sagas WHERE status NOT IN ({_SETTLED_MARKS})"
                " ORDER BY created_at",
                _SETTLED,
            )
            return [r[0] for r in rows]

        return await self._db.read(work)

    async def purge_settled(self, *, before: str) -> int:
        marks = ", ".join("?" for _ in _TERMINAL)
        old = f"status IN ({marks}) AND updated_at < ?"

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(
                f"DELETE FROM saga_events WHERE saga_id IN (SELECT saga_id FROM sagas WHERE {old})",
                (*_TERMINAL, before),
            )
            return conn.execute(f"DELETE FROM sagas WHERE {old}", (*_TERMINAL, before)).rowcount

        return await self._db.write(work)

    async def count_by_status(self) -> dict[str, int]:
        def work(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT status, COUNT(*) FROM sagas GROUP BY status")
            return dict(rows)

        return await self._db.read(work)

    async def close(self) -> None:
        await self._db.close()
