"""The shape rules a saga definition must keep, checked when it is built (`InvalidDefinition`).

A saga that cannot be run safely is refused before anything is logged:
- **compensatable** steps come first; each has a compensation that undoes it (and is safe to
  send even if the action never landed: the participant leaves a tombstone);
- then at most one **pivot**, the point of no return: no compensation; an unknown outcome is
  decided by its settlement if it has one, else the saga parks;
- then **retriable** steps, which must eventually succeed: retried with the same key, and a
  definite refusal or exhausted retries park the saga for an operator (nothing before a pivot
  that landed may be undone).
Without a pivot the saga is all compensatable steps, optionally followed by retriable ones (the
last compensatable step is then the point of no return). This is Garcia-Molina and Salem's
shape for sagas, checked rather than assumed: Eventuate compensates after an implicit pivot,
python-cqrs has no pivot, Temporal and DBOS leave compensation order to user code.

Keys: two calls sent to one service under one key (`KeyScheme`, per step or per definition)
must be different operations, or the participant would take the second for a retry of the first.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING

from repository_after.domain.saga_steps import (
    FromResult,
    InvalidDefinition,
    KeyScheme,
    Step,
    StepKind,
    StepRole,
)

if TYPE_CHECKING:
    from repository_after.domain.saga_definition import SagaDefinition

_ORDER = {StepKind.COMPENSATABLE: 0, StepKind.PIVOT: 1, StepKind.RETRIABLE: 2}


def check_shape(definition: SagaDefinition) -> None:
    """Refuse a definition that cannot be run safely, naming it and the rule it breaks."""

    def refuse(reason: str) -> InvalidDefinition:
        return InvalidDefinition(f"saga {definition.name!r}: {reason}")

    steps = definition.steps
    if not steps:
        raise refuse("a saga needs at least one step")
    if definition.version < 1:
        raise refuse(f"version {definition.version} (versions start at 1)")
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise refuse(f"step names repeat: {names}")
    if sum(step.kind is StepKind.PIVOT for step in steps) > 1:
        pivots = [step.name for step in steps if step.kind is StepKind.PIVOT]
        raise refuse(f"more than one pivot: {pivots}")
    for before, after in pairwise(steps):
        if _ORDER[after.kind] < _ORDER[before.kind]:
            raise refuse(
                f"{after.kind.value} step {after.name!r} after {before.kind.value} step "
                f"{before.name!r}: compensatable steps come first, then at most one pivot, "
                "then retriable steps"
            )
    for i, step in enumerate(steps):
        if step.kind is StepKind.COMPENSATABLE and step.compensation is None:
            raise refuse(f"compensatable step {step.name!r} has no compensation")
        if step.kind is not StepKind.COMPENSATABLE and step.compensation is not None:
            raise refuse(
                f"{step.kind.value} step {step.name!r} has a compensation: only steps before "
                "the point of no return can be undone"
            )
        if step.kind is StepKind.RETRIABLE and step.settlement is not None:
            raise refuse(f"retriable step {step.name!r} has a settlement: it is retried instead")
        if step.landed_statuses & step.fenced_statuses:
            both = sorted(step.landed_statuses & step.fenced_statuses)
            raise refuse(f"step {step.name!r}: {both} would mean both landed and fenced")
        for source in step.request.values():
            if isinstance(source, FromResult):
                earlier = names[:i]
                if source.step not in earlier:
                    raise refuse(
                        f"step {step.name!r} reads the answer of {source.step!r}, which is "
                        f"not an earlier step ({earlier})"
                    )
                if steps[names.index(source.step)].settlement is not None:
                    raise refuse(
                        f"step {step.name!r} reads the answer of {source.step!r}, whose outcome "
                        "may be settled (a settlement's answer does not carry the action's)"
                    )
    _check_keys(definition, refuse)


def _check_keys(definition: SagaDefinition, refuse: Callable[[str], InvalidDefinition]) -> None:
    """Two calls to one service under one key must be different operations: the participant
    records one call per (operation, key) and would answer the second with the first's record
    (a second `reserve` replaying the first's answer instead of reserving). Under the saga's
    key that spans steps; under a step's key, the roles of that step."""
    sent: dict[tuple[str, str | None, str], str] = {}  # (service, key, operation) -> its caller
    for step in definition.steps:
        # None: the saga id (`KeyScheme.SAGA`); a step name: `<saga id>:<step>`
        key = None if definition.scheme(step) is KeyScheme.SAGA else step.name
        for role, operation in _operations(step):
            caller = f"step {step.name!r} ({role.value})"
            first = sent.get((step.service, key, operation))
            if first is not None:
                where = "the saga id" if key is None else f"the key '<saga id>:{key}'"
                raise refuse(
                    f"{first} and {caller} both send {operation!r} to service "
                    f"{step.service!r} under {where}: one key carries one call of an operation "
                    "(key one of them per step, KeyScheme.STEP, or use another operation)"
                )
            sent[step.service, key, operation] = caller


def _operations(step: Step) -> list[tuple[StepRole, str]]:
    """(role, operation) of each call the step has."""
    calls = (
        (StepRole.ACTION, step.action),
        (StepRole.COMPENSATION, step.compensation),
        (StepRole.SETTLEMENT, step.settlement),
    )
    return [(role, op) for role, op in calls if op is not None]
