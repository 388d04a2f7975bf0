"""The transfer saga: debit the source, then credit the target, both keyed by the transfer id.

- `debit` can be compensated (`compensate_debit`), and its compensation is safe even when the
  debit never landed: the account service leaves a tombstone that refuses a late debit.
- `credit` is the pivot: once it lands the transfer is done. An unknown credit is settled with
  `void_credit`: `already_applied` means it landed (complete), `voided` means it never will
  (compensate the debit). A 500 from `/credit` is never read as "did not happen".
Every call of a transfer is keyed by the transfer id (`KeyScheme.SAGA`), as since version 1: the
account service relates a transfer's debit, credit, compensation and void by that id.
"""

from __future__ import annotations

from repository_after.domain.saga import KeyScheme, SagaDefinition, Step, StepKind

ACCOUNTS = "accounts"

TRANSFER = SagaDefinition(
    name="transfer",
    steps=(
        Step(
            name="debit",
            service=ACCOUNTS,
            action="debit",
            running_status="debiting",
            request={"account_id": "source", "amount": "amount"},
            kind=StepKind.COMPENSATABLE,
            compensation="compensate_debit",
        ),
        Step(
            name="credit",
            service=ACCOUNTS,
            action="credit",
            running_status="crediting",
            request={"account_id": "target", "amount": "amount"},
            kind=StepKind.PIVOT,
            settlement="void_credit",
        ),
    ),
    keys=KeyScheme.SAGA,
)
