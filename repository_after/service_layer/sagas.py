"""`run_saga`: start a saga of any registered type (or find the one its id already names) and
wait for it; `saga_of_type`: one saga's view, only under its own type.

Rules checked before anything is logged: the type exists (`UnknownSagaType`), its parameters
pass the type's model and rules (`SagaTypes.parameters`). The saga is durable once
`Orchestrator.start` returns: whatever happens to this call afterwards (the wait ends, the
client leaves), the driver or, after a crash, recovery takes it to the end. The answer is the
saga as it stands after at most `wait` seconds, perhaps still running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.saga_ports import StoredSaga, event_times
from repository_after.service_layer.saga_types import SagaTypes
from repository_after.service_layer.saga_views import load_saga_view, saga_view


@dataclass(frozen=True, slots=True)
class SagaRun:
    saga_id: str
    created: bool  # False: the id named an existing saga with the same request (a replay)
    view: dict[str, Any]  # `saga_views.saga_view`


async def run_saga(
    *,
    orchestrator: Orchestrator,
    types: SagaTypes,
    saga_type: str,
    raw: Mapping[str, Any],
    transaction_id: str | None,
    wait: float,
) -> SagaRun:
    params = types.parameters(saga_type, raw)
    return await start_and_wait(
        orchestrator=orchestrator,
        saga_type=saga_type,
        params=params,
        transaction_id=transaction_id,
        wait=wait,
    )


async def start_and_wait(
    *,
    orchestrator: Orchestrator,
    saga_type: str,
    params: dict[str, Any],
    transaction_id: str | None,
    wait: float,
) -> SagaRun:
    """Start a saga of valid `params` (or find the one `transaction_id` names) and wait."""
    saga_id, created = await orchestrator.start(saga_type, params, saga_id=transaction_id)
    if not created:
        await orchestrator.wait(saga_id, wait)
        return SagaRun(
            saga_id, created, await load_saga_view(orchestrator=orchestrator, saga_id=saga_id)
        )
    state = await orchestrator.outcome(saga_id, wait)
    if state is None:  # still running, or its driver stopped: show what the log holds
        return SagaRun(
            saga_id, created, await load_saga_view(orchestrator=orchestrator, saga_id=saga_id)
        )
    # Driven here from creation to the end: every event is in memory, nothing to read back.
    created_at, updated_at = event_times(state.history)
    started = orchestrator.latest(saga_type)  # created just now, on the latest version
    stored = StoredSaga(
        saga_id,
        started.name,
        started.version,
        started.shape_hash(),
        params,
        state.status,
        created_at,
        updated_at,
        state.history,
    )
    return SagaRun(saga_id, created, saga_view(stored=stored, state=state))


async def saga_of_type(
    *, orchestrator: Orchestrator, saga_type: str, saga_id: str
) -> dict[str, Any]:
    """The view of saga `saga_id` if it is of `saga_type`; `SagaNotFound` otherwise (an id of
    another type is not found under this one)."""
    view = await load_saga_view(orchestrator=orchestrator, saga_id=saga_id)
    if view["saga"] != saga_type:
        raise SagaNotFound(saga_id)
    return view
