"""The A → B → C saga: a generic three-step example over three participants (pure data).

Not a built-in type: it is not in `domain.sagas.DEFINITIONS`; a server registers it only when
asked (`SAGABANK_EXTRA_SAGAS=abc`, `domain.sagas.OPT_IN`). It exists to show, call by call, what
the engine does when one participant of three fails (`services/abc.py` are its participants,
`services/abc_matrix.py` the calls each failure makes; the failure matrix test and
`sagabank demo --saga abc` run every failure, docs/sagas.md shows the calls observed).

Every step is compensatable, so the last one, `c`, is the saga's point of no return
(docs/sagas.md, "Compensatable, pivot, retriable"): a definite refusal of a step compensates the
steps applied before it, last first, and not the refused step (nothing of it happened); an
outcome still unknown after every retry counts as possibly applied, so that step is compensated
too, first (its participant's tombstone fences an action that lands late). Every role of a step
is keyed `<saga id>:<step>` (`KeyScheme.STEP`, the default), which is how a participant relates
a step's `undo` to its `do`.
"""

from __future__ import annotations

from repository_after.domain.saga import SagaDefinition, Step, StepKind

#: Every step sends the saga's two parameters to its service.
REQUEST = {"ref": "ref", "amount": "amount"}

ABC = SagaDefinition(
    name="abc",
    steps=tuple(
        Step(
            name=name,
            service=name.upper(),
            action="do",
            running_status=f"doing_{name}",
            request=REQUEST,
            kind=StepKind.COMPENSATABLE,
            compensation="undo",
        )
        for name in ("a", "b", "c")
    ),
)
