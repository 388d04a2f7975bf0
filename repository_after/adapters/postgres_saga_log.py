"""PostgreSQL adapter of the write-ahead saga log, shared by several orchestrator workers.

Same tables as SQLite (`sagas`, `saga_events`; `migrations`, component `sagas`) with the lease
columns `owner`, `lease_until` (timestamptz, the database's clock: one clock for every worker)
and `fence`. `claim` is `UPDATE … WHERE saga_id IN (SELECT … FOR UPDATE SKIP LOCKED)`, so two
workers claiming at once never get the same saga and never wait on each other; a fenced `append`
updates the saga row only `WHERE owner = … AND fence = …` and inserts the events in the same
transaction, so a write under a lost lease changes nothing and raises `LeaseLost`.
Uses psycopg's async pool, opened on first use (it needs the running event loop).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg_pool

from repository_after.adapters.postgres_db import migrate_url, postgres_conninfo
from repository_after.domain.saga import SETTLED, TERMINAL, SagaEvent
from repository_after.service_layer.ports import StorageError
from repository_after.service_layer.saga_ports import (
    Lease,
    LeaseLost,
    SagaSummary,
    StoredSaga,
    event_times,
)

AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]

_SETTLED = sorted(s.value for s in SETTLED)
_TERMINAL = sorted(s.value for s in TERMINAL)
_SUMMARY_COLUMNS = "saga_id, definition, params, status, created_at, updated_at"
_TTL = "now() + %s * interval '1 second'"


def _summary(row: tuple[Any, ...]) -> SagaSummary:
    return SagaSummary(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


async def _insert_events(
    conn: AsyncConn, saga_id: str, first_seq: int, events: Sequence[SagaEvent]
) -> None:
    # One statement, not executemany: a pipeline left half-sent by a paused process would hold
    # its locks without ever arming the server's idle-in-transaction timeout.
    await conn.execute(
        "INSERT INTO saga_events (saga_id, seq, data)"
        " SELECT %s, seq, data FROM unnest(%s::int[], %s::text[]) AS e(seq, data)",
        (
            saga_id,
            [first_seq + i for i in range(len(events))],
            [json.dumps(e.as_dict(), separators=(",", ":")) for e in events],
        ),
    )


class PostgresSagaLog:
    def __init__(self, database_url: str, *, max_size: int = 10) -> None:
        self._url = database_url
        self._max_size = max_size
        self._pool: psycopg_pool.AsyncConnectionPool[AsyncConn] | None = None
        self._opening = asyncio.Lock()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConn]:
        """One transaction on a pooled connection; driver errors become StorageError."""
        try:
            if self._pool is None:
                async with self._opening:
                    if self._pool is None:
                        await asyncio.to_thread(migrate_url, self._url, "sagas")
                        pool: psycopg_pool.AsyncConnectionPool[AsyncConn] = (
                            psycopg_pool.AsyncConnectionPool(
                                postgres_conninfo(self._url),
                                min_size=1,
                                max_size=self._max_size,
                                open=False,
                                name="sagabank-sagas",
                            )
                        )
                        await pool.open(wait=True)
                        self._pool = pool
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StorageError(f"postgres: {exc}") from exc

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
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO sagas (saga_id, definition, params, status, version, created_at,"
                " updated_at, owner, lease_until, fence)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, {_TTL}, 1)"
                " ON CONFLICT DO NOTHING",
                (
                    saga_id,
                    definition,
                    json.dumps(params),
                    status,
                    len(events),
                    created_at,
                    updated_at,
                    owner,
                    ttl,
                ),
            )
            if cur.rowcount == 0:
                return None
            await _insert_events(conn, saga_id, 1, events)
            return Lease(saga_id, owner, 1)

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        sql = "UPDATE sagas SET version = version + %s, status = %s, updated_at = %s"
        if release:
            sql += ", owner = NULL, lease_until = NULL"
        sql += " WHERE saga_id = %s"
        args: tuple[Any, ...] = (len(events), status, event_times(events)[1], saga_id)
        if lease is not None:
            sql += " AND owner = %s AND fence = %s"
            args += (lease.owner, lease.fence)
        async with self._tx() as conn:
            row = await (await conn.execute(sql + " RETURNING version", args)).fetchone()
            if row is None:
                raise LeaseLost(f"saga {saga_id}: lease {lease} no longer holds")
            await _insert_events(conn, saga_id, row[0] - len(events) + 1, events)

    async def claim(
        self, owner: str, *, limit: int, ttl: float, include_own: bool = False
    ) -> list[Lease]:
        async with self._tx() as conn:
            cur = await conn.execute(
                f"UPDATE sagas SET owner = %s, lease_until = {_TTL}, fence = fence + 1"
                " WHERE saga_id IN (SELECT saga_id FROM sagas WHERE status <> ALL(%s)"
                " AND (owner IS NULL OR lease_until < now() OR (%s AND owner = %s))"
                " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING saga_id, fence",
                (owner, ttl, _SETTLED, include_own, owner, limit),
            )
            return [Lease(saga_id, owner, fence) for saga_id, fence in await cur.fetchall()]

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        async with self._tx() as conn:
            cur = await conn.execute(
                f"UPDATE sagas SET owner = %s, lease_until = {_TTL}, fence = fence + 1"
                " WHERE saga_id = %s AND (owner IS NULL OR lease_until < now())"
                " RETURNING fence",
                (owner, ttl, saga_id),
            )
            row = await cur.fetchone()
            return None if row is None else Lease(saga_id, owner, row[0])

    async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
        if not leases:
            return set()
        async with self._tx() as conn:
            cur = await conn.execute(
                f"UPDATE sagas SET lease_until = {_TTL}"
                " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS held(saga_id, owner, fence)"
                " WHERE sagas.saga_id = held.saga_id AND sagas.owner = held.owner"
                " AND sagas.fence = held.fence RETURNING sagas.saga_id",
                (
                    ttl,
                    [x.saga_id for x in leases],
                    [x.owner for x in leases],
                    [x.fence for x in leases],
                ),
            )
            return {r[0] for r in await cur.fetchall()}

    async def release(self, leases: Sequence[Lease]) -> None:
        if not leases:
            return
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE sagas SET owner = NULL, lease_until = NULL"
                " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS held(saga_id, owner, fence)"
                " WHERE sagas.saga_id = held.saga_id AND sagas.owner = held.owner"
                " AND sagas.fence = held.fence",
                ([x.saga_id for x in leases], [x.owner for x in leases], [x.fence for x in leases]),
            )

    async def load(self, saga_id: str) -> StoredSaga | None:
        async with self._tx() as conn:
            row = await (
                await conn.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE saga_id = %s", (saga_id,)
                )
            ).fetchone()
            if row is None:
                return None
            cur = await conn.execute(
                "SELECT data FROM saga_events WHERE saga_id = %s ORDER BY seq", (saga_id,)
            )
            events = tuple(SagaEvent.from_dict(json.loads(d)) for (d,) in await cur.fetchall())
        s = _summary(row)
        return StoredSaga(
            s.saga_id, s.definition, s.params, s.status, s.created_at, s.updated_at, events
        )

    async def summary(self, saga_id: str) -> SagaSummary | None:
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE saga_id = %s", (saga_id,)
            )
            row = await cur.fetchone()
        return None if row is None else _summary(row)

    async def list_recent(
        self, *, status: str | None = None, limit: int = 100
    ) -> list[SagaSummary]:
        where, args = ("", (limit,)) if status is None else (" WHERE status = %s", (status, limit))
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM sagas{where} ORDER BY created_at DESC LIMIT %s",
                args,
            )
            return [_summary(r) for r in await cur.fetchall()]

    async def unsettled_ids(self) -> list[str]:
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT saga_id FROM sagas WHERE status <> ALL(%s) ORDER BY created_at",
                (_SETTLED,),
            )
            return [r[0] for r in await cur.fetchall()]

    async def purge_settled(self, *, before: str) -> int:
        old = "status = ANY(%s) AND updated_at < %s"
        async with self._tx() as conn:
            await conn.execute(
                f"DELETE FROM saga_events WHERE saga_id IN (SELECT saga_id FROM sagas WHERE {old})",
                (_TERMINAL, before),
            )
            cur = await conn.execute(f"DELETE FROM sagas WHERE {old}", (_TERMINAL, before))
            return cur.rowcount

    async def count_by_status(self) -> dict[str, int]:
        async with self._tx() as conn:
            cur = await conn.execute("SELECT status, COUNT(*) FROM sagas GROUP BY status")
            return {r[0]: int(r[1]) for r in await cur.fetchall()}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
