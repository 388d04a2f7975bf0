"""`perform_operation`: one account operation as the account service serves it, alone (`/debit`,
`/credit`, `/compensate_debit`, `/void_credit`) or as one item of `/batch`.

The use case is: draw `/credit`'s injected fault, run the operation in ONE local transaction of
the store (`service_layer.accounts`: replay, tombstones, rules), log what was served. Outcomes:
- an `Answer` (applied, replayed, or a recorded business refusal; the exact bytes to send, as
  the participant kit's rules decided them, `service_layer.accounts.answer`): committed;
- `BusinessError` raised: the transaction rolled back, nothing recorded;
- `InjectedFault` raised: the configured fault. `before` fires before the store is touched;
  `after` fires once the transaction COMMITTED — the lost answer, the case sagas must survive:
  the caller sees a 500 for an operation that did happen, and must retry with the same key;
- `StorageError` raised: outcome unknown (the commit may or may not have happened).
Callers turn raised errors into answers through the one error table (`entrypoints.errors`).
"""

from __future__ import annotations

import logging

from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.participant_kit.records import Answer
from repository_after.service_layer import accounts
from repository_after.service_layer.faults import FaultInjector, FaultPoint
from repository_after.service_layer.ports import AccountStore

# The name the "served" lines have always been logged under: log filters and the JSON-log test
# select the account service's lines by it, so it outlives the move out of the entry point.
logger = logging.getLogger("repository_after.entrypoints.accounts_api")


class InjectedFault(Exception):
    """A fault injected on purpose (`FaultInjector`); answered 500 `injected_fault`."""


_BEFORE = "injected fault before the credit"
_AFTER = "injected fault: the answer was lost after the request was processed"


async def perform_operation(
    *, store: AccountStore, faults: FaultInjector, request: OperationRequest
) -> Answer:
    """Run `request` once, in one transaction, with `/credit`'s fault injection (see above)."""
    point = faults.draw(request.transaction_id) if request.operation is Operation.CREDIT else None
    if point is FaultPoint.BEFORE:
        raise InjectedFault(_BEFORE)
    reply = await store.transaction(lambda tx: accounts.answer(tx, request))
    logger.info(
        "%s %s -> %s%s",
        request.operation.value,
        request.transaction_id,
        reply.status_code,
        " (replayed)" if reply.replayed else "",
    )
    if point is FaultPoint.AFTER:
        raise InjectedFault(_AFTER)  # committed: the caller must learn it only by retrying
    return reply
