"""The order saga: create the order, reserve its stock, charge the customer, pay the merchant,
then sell the stock and confirm the order. Pure data; docs/sagas.md walks through it.

| step | service | kind | key | undo / decide |
|---|---|---|---|---|
| create | orders | compensatable | `<saga>:create` | `cancel` (the order `cancelled`) |
| reserve | inventory | compensatable | `<saga>:reserve` | `release`; `sell` reads its id |
| charge | accounts `debit` (customer) | compensatable | `<saga>` | `compensate_debit` |
| pay | accounts `credit` (merchant) | PIVOT | `<saga>` | `void_credit` settles an unknown one |
| sell | inventory | retriable | `<saga>:sell` | (after the pivot: retried, or parks) |
| confirm | orders | retriable | `<saga>:confirm` | |

Why these kinds: everything before the payment can be undone, and each participant fences a late
action behind its compensation's tombstone, so an unknown outcome there is simply compensated.
The credit to the merchant is the point of no return (money handed over is not taken back by the
saga), and `void_credit` decides an unknown one: `already_applied` goes forward, `voided`
compensates the charge, the reservation and the order, last first. After it, selling reserved
stock and confirming a pending order are business-wise certain to succeed, so they are retried
(each under its own key) and never compensated; a refusal there parks the saga for an operator.

Every call is keyed `<saga id>:<step>` (`KeyScheme.STEP`): an action, its compensation and its
settlement share that key. Except the money: `charge` and `pay` are keyed by the saga id alone
(`key=KeyScheme.SAGA`), exactly as a transfer's debit and credit, because the account service's
protocol relates a saga's money operations (debit, credit, compensate_debit, void_credit) by one
transaction id: its write-time rules (no compensation of the debit once the credit under the same
id landed, no credit once the debit was compensated, the tombstones) and its audit (a credit
never exceeds its debit) depend on it. Per-step keys would make it see a payment without a debit.
"""

from __future__ import annotations

from repository_after.domain.saga import FromResult, KeyScheme, SagaDefinition, Step, StepKind
from repository_after.domain.transfer import ACCOUNTS

ORDERS = "orders"
INVENTORY = "inventory"

ORDER = SagaDefinition(
    name="order",
    steps=(
        Step(
            name="create",
            service=ORDERS,
            action="create",
            running_status="creating",
            request={
                "order_id": "order_id",
                "customer": "customer",
                "merchant": "merchant",
                "lines": "lines",
                "total": "total",
            },
            kind=StepKind.COMPENSATABLE,
            compensation="cancel",
        ),
        Step(
            name="reserve",
            service=INVENTORY,
            action="reserve",
            running_status="reserving",
            request={"lines": "lines"},
            kind=StepKind.COMPENSATABLE,
            compensation="release",
        ),
        Step(
            name="charge",
            service=ACCOUNTS,
            action="debit",
            running_status="charging",
            request={"account_id": "customer", "amount": "total"},
            kind=StepKind.COMPENSATABLE,
            compensation="compensate_debit",
            key=KeyScheme.SAGA,
        ),
        Step(
            name="pay",
            service=ACCOUNTS,
            action="credit",
            running_status="paying",
            request={"account_id": "merchant", "amount": "total"},
            kind=StepKind.PIVOT,
            settlement="void_credit",
            key=KeyScheme.SAGA,
        ),
        Step(
            name="sell",
            service=INVENTORY,
            action="sell",
            running_status="selling",
            request={"reservation_id": FromResult("reserve", "reservation_id")},
            kind=StepKind.RETRIABLE,
        ),
        Step(
            name="confirm",
            service=ORDERS,
            action="confirm",
            running_status="confirming",
            request={"order_id": "order_id"},
            kind=StepKind.RETRIABLE,
        ),
    ),
)
