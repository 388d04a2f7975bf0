"""What an operator sees of one saga, in full (the listings are in `saga_listing`).

Built from the saga log (or, right after a driver finished, from the events it holds in memory)
and shared by every entry point that shows a saga (`GET /transfers/{id}`,
`GET /sagas/{type}/{id}`, the CLI's `sagas show`, which adds the full event history of
`history_rows`), so they cannot drift apart. The shapes are part of the HTTP contract: a saga's
type and the version of its definition it runs on (the dashboard draws its steps from it), its
parameters spread at the top level (a transfer's `source`, `target`, `amount`; no parameter
takes a name of the view's own fields, `saga_types.VIEW_FIELDS`), every attempt of every
operation in order, and every operator action.

The CLI's read-only commands read the log alone (`log_view`, `saga_listing.definition_view`):
they work when the log holds sagas whose definition this server defines with another shape (the
moment an operator needs them most, while `serve` and the writing commands refuse), and say so.
Such a saga is never replayed under the other shape: its status is the log's own.
"""

from __future__ import annotations

from typing import Any

from repository_after.domain.saga import EventKind, SagaEvent, SagaState, replay
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_listing import definition_view
from repository_after.service_layer.saga_ports import StoredSaga
from repository_after.service_layer.saga_types import SagaTypes

_OPERATOR_ACTIONS = (EventKind.OPERATOR_RETRY, EventKind.OPERATOR_RESOLVE)


def saga_view(*, stored: StoredSaga, state: SagaState) -> dict[str, Any]:
    """A saga as JSON: its parameters, status, and every attempt of every operation."""
    attempts = [
        {
            "step": e.step,
            "operation": e.operation,
            "role": e.role,
            "attempt": e.attempt,
            "outcome": e.outcome,
            "status_code": e.status_code,
            "error": e.error,
            "result": e.result,
            "started_at": e.started_at,
            "finished_at": e.at,
            # choreography: the service that made the call and published its outcome
            "publisher": e.publisher,
        }
        for e in stored.events
        if e.kind is EventKind.ATTEMPT
    ]
    notes = [
        {"action": e.kind.value, "note": e.note, "at": e.at}
        for e in stored.events
        if e.kind in _OPERATOR_ACTIONS
    ]
    return {
        "transaction_id": stored.saga_id,
        "saga": stored.definition,
        "version": stored.definition_version,
        **stored.params,
        "status": state.status,
        "parked_reason": state.parked_reason,
        "created_at": stored.created_at,
        "updated_at": stored.updated_at,
        "attempts": attempts,
        "operator_actions": notes,
    }


def history_rows(stored: StoredSaga) -> list[tuple[str, ...]]:
    """Every event of the saga, in order, as text columns: at, event, step, operation, attempt,
    outcome, status code, detail (an error, a result, or an operator's note; in choreography
    also the service that published the event)."""
    return [
        (
            e.at,
            e.kind.value,
            e.step or "",
            e.operation or "",
            str(e.attempt or ""),
            e.outcome or "",
            str(e.status_code or ""),
            _detail(e),
        )
        for e in stored.events
    ]


def _detail(event: SagaEvent) -> str:
    """An error, a result or an operator's note; in choreography also who published the event."""
    detail = str(event.error or event.result or event.note or "")
    if event.publisher is None:
        return detail
    return f"{detail} · by {event.publisher}" if detail else f"by {event.publisher}"


def log_view(*, stored: StoredSaga, types: SagaTypes) -> dict[str, Any]:
    """`saga_view` from the log alone, with its `definition` (`definition_view`). A saga whose
    shape differs here is not replayed: its status is the log's, its parked reason unknown."""
    definition = definition_view(
        types,
        name=stored.definition,
        version=stored.definition_version,
        shape_hash=stored.definition_hash,
    )
    if definition["changed"] is None:
        state = replay(types.version(stored.definition, stored.definition_version), stored.events)
    else:
        state = SagaState(status=stored.status)
    return {**saga_view(stored=stored, state=state), "definition": definition}


async def load_saga_view(*, orchestrator: Orchestrator, saga_id: str) -> dict[str, Any]:
    """`saga_view` of the saga as the log holds it; raises `SagaNotFound` for an unknown id."""
    stored = await orchestrator.get(saga_id)
    return saga_view(stored=stored, state=orchestrator.state_of(stored))
