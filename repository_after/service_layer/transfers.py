"""`run_transfer`: start a transfer saga (or find the one its id already names) and wait for it.

Rule checked before anything is logged: a transfer's source is not its target (`SameAccount`).
The saga is durable once `Orchestrator.start` returns: whatever happens to this call afterwards
(the wait ends, the client leaves), the driver or, after a crash, recovery takes it to the end.
The answer is the saga as it stands after at most `wait` seconds, perhaps still running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repository_after.domain.errors import SameAccount
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.sagas import SagaRun, start_and_wait

#: A transfer run is a saga run (`sagas.SagaRun`): its id, whether it was created, its view.
TransferRun = SagaRun


def transfer_rules(params: Mapping[str, Any]) -> None:
    """The transfer's rule beyond its parameters' types (also for `POST /sagas/transfer`)."""
    if params["source"] == params["target"]:
        raise SameAccount("source and target must differ")


def order_rules(params: Mapping[str, Any]) -> None:
    """The order saga's rule beyond its parameters' types (`POST /sagas/order`): the customer
    pays someone else."""
    if params["customer"] == params["merchant"]:
        raise SameAccount("customer and merchant must differ")


async def run_transfer(
    *,
    orchestrator: Orchestrator,
    source: str,
    target: str,
    amount: int,
    transaction_id: str | None,
    wait: float,
) -> TransferRun:
    params = {"source": source, "target": target, "amount": amount}
    transfer_rules(params)
    return await start_and_wait(
        orchestrator=orchestrator,
        saga_type=TRANSFER.name,
        params=params,
        transaction_id=transaction_id,
        wait=wait,
    )
