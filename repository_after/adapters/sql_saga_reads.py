"""The saga log's reads, and the plumbing its SQL shares, for the SQLite and PostgreSQL adapters.

`SqlSagaReads` is the base of `sql_saga_log.SqlSagaLog`: statements are written once with `?`
placeholders (`_stmt` rewrites them to the backend's `placeholder`) and run as plans
(`sql_plan`) by the backend's `_run`, one transaction each. Reads never change a row, so a read
that races a write sees the saga before or after it, never half of it (the status and the
events commit together). JSON columns (`params`, event `data`) are orjson text on both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from repository_after.adapters.sql_plan import Plan, Stmt
from repository_after.domain.saga import AT_REST, TERMINAL, SagaEvent, SagaStatus
from repository_after.service_layer.saga_ports import DefinitionInUse, SagaSummary, StoredSaga

T = TypeVar("T")

AT_REST_VALUES = tuple(sorted(s.value for s in AT_REST))
TERMINAL_VALUES = tuple(sorted(s.value for s in TERMINAL))


def marks(values: Sequence[object]) -> str:
    """One `?` per value, for `IN (...)`."""
    return ", ".join("?" for _ in values)


_SUMMARY_COLUMNS = (
    "saga_id, definition, definition_version, definition_hash, params, status, created_at,"
    " updated_at"
)
# Statements at module level, with `?` placeholders: they are data, not logic, and mutation
# testing (which mutates only inside functions) then counts the code that picks and binds them,
# not the letter case of SQL keywords. `{where}` is filled per call.
_SUMMARY_OF = f"SELECT {_SUMMARY_COLUMNS} FROM sagas WHERE saga_id = ?"
_EVENTS_OF = "SELECT data FROM saga_events WHERE saga_id = ? ORDER BY seq"
_RECENT = f"SELECT {_SUMMARY_COLUMNS} FROM sagas{{where}} ORDER BY created_at DESC LIMIT ?"
_STATUS_IS = "status = ?"
_DEFINITION_IS = "definition = ?"
_UNSETTLED = (
    f"SELECT saga_id FROM sagas WHERE status NOT IN ({marks(AT_REST_VALUES)}) ORDER BY created_at"
)
_COUNT_BY_STATUS = "SELECT status, COUNT(*) FROM sagas GROUP BY status"
_COUNT_BY_DEFINITION = "SELECT definition, status, COUNT(*) FROM sagas GROUP BY definition, status"
# Non-terminal sagas split as the port's `oldest_unsettled` names them: parked, or in flight.
_OLDEST_UNSETTLED = (
    "SELECT definition, CASE WHEN status = ? THEN 'parked' ELSE 'in_flight' END AS kind,"
    f" MIN(created_at) FROM sagas WHERE status NOT IN ({marks(TERMINAL_VALUES)})"
    " GROUP BY definition, kind"
)
_DEFINITION_COLUMNS = "definition, definition_version, definition_hash"
_DEFINITIONS_IN_USE = (
    f"SELECT {_DEFINITION_COLUMNS}, COUNT(*) FROM sagas"
    f" WHERE status NOT IN ({marks(TERMINAL_VALUES)})"
    f" GROUP BY {_DEFINITION_COLUMNS} ORDER BY {_DEFINITION_COLUMNS}"
)


def encode(data: dict[str, Any]) -> str:
    """Compact JSON text; orjson, as events are encoded several times per transfer and the
    standard library's encoder cost 10 x more (docs/performance.md)."""
    return orjson.dumps(data).decode()


def _summary(row: Sequence[Any]) -> SagaSummary:
    return SagaSummary(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6], row[7])


class SqlSagaReads:
    placeholder = "?"

    async def _run(self, plan: Callable[[], Plan[T]], *, writes: bool, on_loop: bool) -> T:
        """Run a fresh `plan()` in one transaction; `on_loop` as for `SqliteDatabase.write`."""
        raise NotImplementedError

    def _stmt(self, sql: str, args: Sequence[Any] = ()) -> Stmt:
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        return Stmt(sql, args)

    def _summary_of(self, saga_id: str) -> Stmt:
        return self._stmt(_SUMMARY_OF, (saga_id,))

    async def load(self, saga_id: str) -> StoredSaga | None:
        def plan() -> Plan[StoredSaga | None]:
            found = yield self._summary_of(saga_id)
            if not found.rows:
                return None
            stored = yield self._stmt(_EVENTS_OF, (saga_id,))
            s = found.rows[0]
            events = tuple(SagaEvent.from_dict(orjson.loads(data)) for (data,) in stored.rows)
            return StoredSaga(s[0], s[1], s[2], s[3], orjson.loads(s[4]), s[5], s[6], s[7], events)

        return await self._run(plan, writes=False, on_loop=True)

    async def summary(self, saga_id: str) -> SagaSummary | None:
        def plan() -> Plan[SagaSummary | None]:
            found = yield self._summary_of(saga_id)
            return _summary(found.rows[0]) if found.rows else None

        return await self._run(plan, writes=False, on_loop=True)

    async def list_recent(
        self, *, status: str | None = None, definition: str | None = None, limit: int
    ) -> list[SagaSummary]:
        filters = [
            (sql, value)
            for sql, value in ((_STATUS_IS, status), (_DEFINITION_IS, definition))
            if value is not None
        ]
        where = " WHERE " + " AND ".join(sql for sql, _ in filters) if filters else ""
        args = (*(value for _, value in filters), limit)

        def plan() -> Plan[list[SagaSummary]]:
            recent = yield self._stmt(_RECENT.format(where=where), args)
            return [_summary(r) for r in recent.rows]

        return await self._run(plan, writes=False, on_loop=False)

    async def unsettled_ids(self) -> list[str]:
        def plan() -> Plan[list[str]]:
            unsettled = yield self._stmt(_UNSETTLED, AT_REST_VALUES)
            return [saga_id for (saga_id,) in unsettled.rows]

        return await self._run(plan, writes=False, on_loop=False)

    async def definitions_in_use(self) -> list[DefinitionInUse]:
        def plan() -> Plan[list[DefinitionInUse]]:
            found = yield self._stmt(_DEFINITIONS_IN_USE, TERMINAL_VALUES)
            return [DefinitionInUse(d, int(v), h, int(n)) for d, v, h, n in found.rows]

        return await self._run(plan, writes=False, on_loop=False)

    async def count_by_status(self) -> dict[str, int]:
        def plan() -> Plan[dict[str, int]]:
            counts = yield self._stmt(_COUNT_BY_STATUS)
            return {status: int(n) for status, n in counts.rows}

        return await self._run(plan, writes=False, on_loop=False)

    async def count_by_definition(self) -> dict[str, dict[str, int]]:
        def plan() -> Plan[dict[str, dict[str, int]]]:
            found = yield self._stmt(_COUNT_BY_DEFINITION)
            counts: dict[str, dict[str, int]] = {}
            for definition, status, n in found.rows:
                counts.setdefault(definition, {})[status] = int(n)
            return counts

        return await self._run(plan, writes=False, on_loop=False)

    async def oldest_unsettled(self) -> dict[str, dict[str, str]]:
        args = (SagaStatus.FAILED_NEEDS_ATTENTION.value, *TERMINAL_VALUES)

        def plan() -> Plan[dict[str, dict[str, str]]]:
            found = yield self._stmt(_OLDEST_UNSETTLED, args)
            oldest: dict[str, dict[str, str]] = {}
            for definition, kind, created_at in found.rows:
                oldest.setdefault(definition, {})[kind] = created_at
            return oldest

        return await self._run(plan, writes=False, on_loop=False)
