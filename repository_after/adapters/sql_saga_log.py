"""The saga log's writes and leases, shared by the SQLite and PostgreSQL adapters.

Tables (`migrations`, component `sagas`): `sagas`, one row per saga with its definition's name,
`definition_version` and `definition_hash`, its status, a version (the number of events) and the
lease columns `owner`, `lease_until`, `fence`; `saga_events`, the
append-only events keyed by (saga_id, seq). Every statement is written here (reads: in
`sql_saga_reads`) once, with `?` placeholders, inside a plan (`sql_plan`) that holds the
decisions between statements, so the control flow is written once too. A backend runs plans
(`_run`) and fills the hooks where the engines differ:
- `now_sql`: the lease clock, always THE DATABASE'S, so workers on different machines (or with
  a stepped process clock) agree on when a lease ends; `_until()`: that clock plus ? seconds;
  `now()` reads it (epoch seconds on SQLite, a timestamptz on PostgreSQL: `_utc`);
- `_rows(sql, args, rows)`: a statement over many rows (events to insert, leases to renew);
- `skip_locked`: the row-lock clause that lets concurrent claimers pass each other;
- `ids_sql`: the saga ids of ONE JSON-array parameter, as a relation (`claim`'s `exclude`: one
  parameter however many ids, so no engine's limit on parameters applies).

Invariants: the status moves in the same statement as the version and in the same transaction as
the events it summarises, so it never disagrees with them (the events are the truth). Every
fenced write checks `owner` and `fence` in the statement that writes, so a write under a lost
lease changes nothing and raises `LeaseLost`. A lease "until T" has expired at T (`<=`), so a
ttl of 0 has expired at once even on a clock that ticks in milliseconds (SQLite's).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from repository_after.adapters import sql_saga_statements as q
from repository_after.adapters.sql_plan import Plan, Rows, Stmt
from repository_after.adapters.sql_saga_reads import (
    AT_REST_VALUES,
    TERMINAL_VALUES,
    SqlSagaReads,
    encode,
)
from repository_after.domain.saga import SagaEvent
from repository_after.service_layer.saga_ports import (
    DefinitionKey,
    Lease,
    LeaseLost,
    event_times,
)

T = TypeVar("T")
_EVENT_COLUMNS = (("seq", "int"), ("data", "text"))
_HELD_COLUMNS = (("saga_id", "text"), ("owner", "text"), ("fence", "bigint"))


def _keys(template: str, keys: Collection[DefinitionKey]) -> tuple[str, tuple[object, ...]]:
    """The clause `template` (`q.IN_KEYS`, `q.NOT_IN_KEYS`) over `keys`, and its arguments."""
    rows = ", ".join(q.KEY_ROW for _ in keys)
    return template.format(rows=rows), tuple(value for key in keys for value in key)


def _utc(value: datetime | float) -> datetime:
    """The lease clock's reading as an aware UTC time, from either engine's representation."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


class SqlSagaLog(SqlSagaReads):
    now_sql = ""
    skip_locked = ""
    ids_sql = ""

    # -- hooks ---------------------------------------------------------------------------

    def _until(self) -> str:
        return f"{self.now_sql} + ?"

    def _sql(self, template: str, **slots: str) -> str:
        """`template` with the backend's lease clock and row-lock clause (and `slots`) filled in."""
        return template.format(
            until=self._until(), now=self.now_sql, skip_locked=self.skip_locked, **slots
        )

    def _rows(self, sql: str, args: Sequence[Any], rows: Rows) -> Stmt:
        """`sql` with `{rows}` standing for the relation `rows`; `args` bind the placeholders
        before `{rows}`."""
        raise NotImplementedError

    # -- plumbing ------------------------------------------------------------------------

    def _insert_events(self, saga_id: str, first_seq: int, events: Sequence[SagaEvent]) -> Stmt:
        rows = [(first_seq + i, encode(e.as_dict())) for i, e in enumerate(events)]
        return self._rows(q.INSERT_EVENTS, (saga_id,), Rows(q.EVENTS_ALIAS, _EVENT_COLUMNS, rows))

    def _held(self, sql: str, args: Sequence[Any], leases: Sequence[Lease], tail: str = "") -> Stmt:
        """`sql` (an UPDATE of sagas) on the rows still held under `leases`."""
        rows = [(x.saga_id, x.owner, x.fence) for x in leases]
        return self._rows(sql + q.HELD_MATCH + tail, args, Rows(q.HELD_ALIAS, _HELD_COLUMNS, rows))

    # -- writes --------------------------------------------------------------------------

    async def write_plan(self, plan: Callable[[], Plan[T]]) -> T:
        """Run `plan` (built from `create_plan`, `append_plan` and `stmt`) in ONE write
        transaction of the log's database."""
        return await self._run(plan, writes=True, on_loop=True)

    def stmt(self, sql: str, args: Sequence[Any] = ()) -> Stmt:
        """A statement (`?` placeholders) in this backend's dialect, for `write_plan`."""
        return self._stmt(sql, args)

    async def create(
        self,
        *,
        saga_id: str,
        definition: str,
        definition_version: int,
        definition_hash: str,
        params: dict[str, Any],
        events: Sequence[SagaEvent],
        status: str = "started",
        owner: str = "",
        ttl: float = 0.0,
    ) -> Lease | None:
        plan = self.create_plan(
            saga_id=saga_id,
            definition=definition,
            definition_version=definition_version,
            definition_hash=definition_hash,
            params=params,
            events=events,
            status=status,
            owner=owner,
            ttl=ttl,
        )
        return await self._run(plan, writes=True, on_loop=True)

    def create_plan(
        self,
        *,
        saga_id: str,
        definition: str,
        definition_version: int,
        definition_hash: str,
        params: dict[str, Any],
        events: Sequence[SagaEvent],
        status: str,
        owner: str,
        ttl: float,
    ) -> Callable[[], Plan[Lease | None]]:
        """`create`'s plan, for a caller that adds its own statements to the same transaction
        (choreography's starting outbox, `choreography.launch`)."""
        created_at, updated_at = event_times(events)
        args = (
            saga_id,
            definition,
            definition_version,
            definition_hash,
            encode(params),
            status,
            len(events),
            created_at,
            updated_at,
        )

        def plan() -> Plan[Lease | None]:
            inserted = yield self._stmt(self._sql(q.CREATE), (*args, owner, ttl))
            if inserted.rowcount == 0:
                return None
            yield self._insert_events(saga_id, 1, events)
            return Lease(saga_id, owner, 1)

        return plan

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        plan = self.append_plan(saga_id, events, status=status, lease=lease, release=release)
        await self._run(plan, writes=True, on_loop=True)

    def append_plan(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> Callable[[], Plan[None]]:
        """`append`'s plan, for a caller that adds its own statements to the same transaction."""
        sql = q.APPEND + (q.RELEASING if release else "") + q.WHERE_SAGA
        args: tuple[Any, ...] = (len(events), status, event_times(events)[1], saga_id)
        if lease is not None:
            sql += q.FENCED
            args += (lease.owner, lease.fence)

        def plan() -> Plan[None]:
            updated = yield self._stmt(sql + q.RETURNING_VERSION, args)
            if not updated.rows:
                raise LeaseLost(f"saga {saga_id}: lease {lease} no longer holds")
            yield self._insert_events(saga_id, updated.rows[0][0] - len(events) + 1, events)

        return plan

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        ttl: float,
        drivable: Collection[DefinitionKey] | None = None,
        include_own: bool = False,
        take_over: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Lease]:
        keys, key_args = ("", ()) if drivable is None else _keys(q.IN_KEYS, drivable)
        # Without ids, no clause: the worker loop's claims keep the plan they had.
        excluding = q.EXCLUDING.format(ids=self.ids_sql) if exclude else ""
        ids = (orjson.dumps(sorted(exclude)).decode(),) if exclude else ()
        sql = self._sql(q.CLAIM, keys=keys, excluding=excluding)
        args = (owner, ttl, *AT_REST_VALUES, include_own, owner, take_over, *key_args, *ids, limit)

        def plan() -> Plan[list[Lease]]:
            claimed = yield self._stmt(sql, args)
            return [Lease(saga_id, owner, fence) for saga_id, fence in claimed.rows]

        if drivable is not None and not drivable:
            return []  # drives nothing: `IN (VALUES)` with no row is not SQL
        return await self._run(plan, writes=True, on_loop=False)

    async def stranded(
        self, *, drivable: Collection[DefinitionKey], idle_before: str, limit: int
    ) -> list[str]:
        keys, key_args = _keys(q.NOT_IN_KEYS, drivable) if drivable else ("", ())

        def plan() -> Plan[list[str]]:
            found = yield self._stmt(
                self._sql(q.STRANDED, keys=keys), (*AT_REST_VALUES, idle_before, *key_args, limit)
            )
            return [saga_id for (saga_id,) in found.rows]

        return await self._run(plan, writes=False, on_loop=False)

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        def plan() -> Plan[Lease | None]:
            taken = yield self._stmt(self._sql(q.ACQUIRE), (owner, ttl, saga_id))
            return Lease(saga_id, owner, taken.rows[0][0]) if taken.rows else None

        return await self._run(plan, writes=True, on_loop=True)

    async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
        def plan() -> Plan[set[str]]:
            renewed = yield self._held(self._sql(q.RENEW), (ttl,), leases, q.RETURNING_SAGA_ID)
            return {saga_id for (saga_id,) in renewed.rows}

        if not leases:
            return set()
        return await self._run(plan, writes=True, on_loop=False)

    async def release(self, leases: Sequence[Lease]) -> None:
        def plan() -> Plan[None]:
            yield self._held(q.RELEASE, (), leases)

        if leases:
            await self._run(plan, writes=True, on_loop=True)

    async def now(self) -> datetime:
        def plan() -> Plan[datetime]:
            read = yield self._stmt(self._sql(q.NOW))
            return _utc(read.rows[0][0])

        return await self._run(plan, writes=False, on_loop=True)

    async def leases_held(self, *, owner_prefix: str) -> list[Lease]:
        # The prefix is matched here, not with LIKE: a worker id may hold `%` or `_`.
        def plan() -> Plan[list[Lease]]:
            read = yield self._stmt(self._sql(q.LIVE_LEASES))
            return [
                Lease(saga_id, owner, fence)
                for saga_id, owner, fence in read.rows
                if owner.startswith(owner_prefix)
            ]

        return await self._run(plan, writes=False, on_loop=True)

    async def purge_settled(self, *, before: str) -> int:
        def plan() -> Plan[int]:
            yield self._stmt(q.PURGE_EVENTS, (*TERMINAL_VALUES, before))
            purged = yield self._stmt(q.PURGE_SAGAS, (*TERMINAL_VALUES, before))
            return purged.rowcount

        return await self._run(plan, writes=True, on_loop=False)
