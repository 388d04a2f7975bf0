"""Sagas listed and counted by type and status: what `GET /sagas`, `GET /sagas/{type}`,
`GET /transfers`, the dashboard and `sagabank sagas list` show.

- `list_sagas`: the `limit` newest sagas of one type (or of every type), newest first, only those
  in `status` if given; both filters run in the saga log's query (`SagaLog.list_recent`), before
  the limit. With them, the counts by status (of that type) or by type and status.
- A status filter must name a status the type can be in (`SagaTypes.statuses`; without a type,
  a status of any registered type): anything else raises `UnknownStatus` (the HTTP edge answers
  422) rather than list nothing, which would read as "no saga is in that state". An unknown type
  raises `UnknownSagaType` (404) before the log is read.
- `count_sagas`: type -> status -> count for every registered type and every one of its statuses,
  zeros included, plus whatever else the log holds (a type no longer registered whose settled
  sagas remain), so the counts always add up to every saga in the log.
A summary spreads the saga's parameters at the top level, as the full view does
(`saga_views.saga_view`); `SagaTypes.register` keeps parameter names off its other fields.
With `with_definitions` (the operator's `sagabank sagas list`), the listing also gives each
saga's stored definition (`definition_view`: name, version, shape hash) and how this server's
differs, if it does: the CLI reads the log alone, and works when the log holds sagas of a
changed shape, which `serve` refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repository_after.service_layer.saga_ports import SagaLog, SagaSummary
from repository_after.service_layer.saga_types import SagaTypes


class UnknownStatus(ValueError):
    """A status filter no saga of the type can match."""

    def __init__(self, status: str, allowed: Sequence[str]) -> None:
        super().__init__(f"no status {status!r}: one of {', '.join(allowed)}")
        self.status, self.allowed = status, tuple(allowed)


def statuses(types: SagaTypes, saga_type: str | None) -> list[str]:
    """The statuses of `saga_type` (`UnknownSagaType` if it is not registered), or, for None,
    those of every registered type."""
    if saga_type is not None:
        return types.statuses(saga_type)
    return list(dict.fromkeys(s for name in types.definitions() for s in types.statuses(name)))


def summary_view(row: SagaSummary) -> dict[str, Any]:
    """One saga in short: its id, type and version, its parameters, status and times."""
    return {
        "transaction_id": row.saga_id,
        "saga": row.definition,
        "version": row.definition_version,
        **row.params,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def definition_view(
    types: SagaTypes, *, name: str, version: int, shape_hash: str
) -> dict[str, Any]:
    """The definition a saga started under, as the log holds it; `changed`: None when this
    server defines that version with that shape, else how it differs (`shape_differs`)."""
    return {
        "name": name,
        "version": version,
        "shape_hash": shape_hash,
        "changed": types.shape_differs(name, version, shape_hash),
    }


async def count_sagas(*, log: SagaLog, types: SagaTypes) -> dict[str, dict[str, int]]:
    """Type -> status -> how many sagas: every registered type with all its statuses (zeros
    included), then any other type or status the log holds."""
    counts = {name: dict.fromkeys(types.statuses(name), 0) for name in sorted(types.definitions())}
    for name, by_status in sorted((await log.count_by_definition()).items()):
        for status, n in sorted(by_status.items()):
            counts.setdefault(name, {})[status] = n
    return counts


async def list_sagas(
    *,
    log: SagaLog,
    types: SagaTypes,
    saga_type: str | None,
    status: str | None,
    limit: int,
    with_definitions: bool = False,
) -> dict[str, Any]:
    """`{"sagas": [summary, ...], "counts": ...}`: the counts of `saga_type` by status, or, for
    every type (None), by type and status; `with_definitions`: and `"definitions"`, saga id ->
    `definition_view`."""
    allowed = statuses(types, saga_type)
    if status is not None and status not in allowed:
        raise UnknownStatus(status, allowed)
    rows = await log.list_recent(status=status, definition=saga_type, limit=limit)
    counts = await count_sagas(log=log, types=types)
    listed = {
        "sagas": [summary_view(r) for r in rows],
        "counts": counts if saga_type is None else counts[saga_type],
    }
    if with_definitions:
        listed["definitions"] = {
            r.saga_id: definition_view(
                types, name=r.definition, version=r.definition_version, shape_hash=r.definition_hash
            )
            for r in rows
        }
    return listed
