"""The classes saga: assign a group of pupils to a class, then add them to its roster. Pure
data; docs/sagas.md walks through it.

| step | service | kind | key | undo / decide |
|---|---|---|---|---|
| assign | pupils | compensatable | `<saga>:assign` | `unassign` (each pupil back to no class) |
| enrol | classes | PIVOT | `<saga>:enrol` | `void_enrol` settles an unknown one |

Why these kinds: assigning the pupils can be undone (`unassign` clears exactly the pupils this
key assigned; before the assignment it leaves the kit's tombstone, which refuses a late one), so
a pupil already in another class (409 `pupil_assigned`) or never registered refuses the saga
with nothing to undo, and an unknown outcome of `assign` is simply compensated. Adding the group
to the roster is the last step, and the one that decides: a full class (409 `class_full`) is a
definite refusal, after which the saga unassigns the pupils. Its unknown outcome must be
resolved, not guessed: the step is the PIVOT, and `void_enrol` settles it under the same key.
`already_applied` means the pupils are on the roster, so the saga completes (undoing the pupil
side then would leave a roster naming pupils in no class); `voided` leaves a tombstone that
refuses a late `enrol`, so the saga may unassign the pupils knowing the roster will never take
them. A compensatable roster step with its own `drop` would also be safe, but it would undo an
assignment that in fact landed (retries exhausted, then drop and unassign) where the settlement
finds out and keeps it; and nothing follows the roster, so no later failure ever needs a drop.

Every call is keyed `<saga id>:<step>` (`KeyScheme.STEP`): an action, its compensation and its
settlement share that key, which both services record with the rows they write (a pupil's
`assigned_key`, a roster row's `enrolled_key`), so the audit can tell each saga's share.
"""

from __future__ import annotations

from repository_after.domain.saga import SagaDefinition, Step, StepKind

PUPILS = "pupils"
CLASSES = "classes"

CLASS_ASSIGNMENT = SagaDefinition(
    name="classes",
    steps=(
        Step(
            name="assign",
            service=PUPILS,
            action="assign",
            running_status="assigning",
            request={"class_id": "class_id", "pupils": "pupils"},
            kind=StepKind.COMPENSATABLE,
            compensation="unassign",
        ),
        Step(
            name="enrol",
            service=CLASSES,
            action="enrol",
            running_status="enrolling",
            request={"class_id": "class_id", "pupils": "pupils"},
            kind=StepKind.PIVOT,
            settlement="void_enrol",
        ),
    ),
)
