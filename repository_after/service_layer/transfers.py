"""`run_transfer`: start a transfer saga (or find the one its id already names) and wait for it.

Rule checked before anything is logged: a transfer's source is not its target (`SameAccount`).
The saga is durable once `Orchestrator.start` returns: whatever happens to this call afterwards
(the wait ends, the client leaves), the driver or, after a crash, recovery takes it to the end.
The answer is the saga as it stands after at most `wait` seconds, perhaps still running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repository_after.domain.errors import SameAccount
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_ports import StoredSaga, event_times
from repository_after.service_layer.saga_views import load_saga_view, saga_view


@dataclass(frozen=True, slots=True)
class TransferRun:
    saga_id: str
    created: bool  # False: the id named an existing transfer with the same request (a replay)
    view: dict[str, Any]  # `saga_views.saga_view`


async def run_transfer(
    *,
    orchestrator: Orchestrator,
    source: str,
    target: str,
    amount: int,
    transaction_id: str | None,
    wait: float,
) -> TransferRun:
    if source == target:
        raise SameAccount("source and target must differ")
    params = {"source": source, "target": target, "amount": amount}
    saga_id, created = await orchestrator.start(TRANSFER.name, params, saga_id=transaction_id)
    if not created:
        await orchestrator.wait(saga_id, wait)
        return TransferRun(
            saga_id, created, await load_saga_view(orchestrator=orchestrator, saga_id=saga_id)
        )
    state = await orchestrator.outcome(saga_id, wait)
    if state is None:  # still running, or its driver stopped: show what the log holds
        return TransferRun(
            saga_id, created, await load_saga_view(orchestrator=orchestrator, saga_id=saga_id)
        )
    # Driven here from creation to the end: every event is in memory, nothing to read back.
    created_at, updated_at = event_times(state.history)
    started = orchestrator.latest(TRANSFER.name)  # created just now, on the latest version
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
    return TransferRun(saga_id, created, saga_view(stored=stored, state=state))
