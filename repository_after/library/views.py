"""What `SagaRunner.inspect` and `run` answer: one saga as plain Python data.

Built from a saga's folded state and its events (the log's, or those the driver that just ran it
holds), never from a second source: status, parameters, each step's outcome, the results the log
keeps (those a later step reads, `definition.py`) and the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repository_after.domain.saga import (
    AT_REST,
    EventKind,
    SagaDefinition,
    SagaState,
    StepRole,
    step_results,
)


@dataclass(frozen=True, slots=True)
class StepView:
    name: str
    kind: str
    #: the last answer of its action: `succeeded`, `rejected`, `unknown`, None (not called)
    action: str | None
    #: how many times its action was called (across crashes: each logged attempt)
    attempts: int
    #: its compensation's last answer, None if it was never compensated
    compensation: str | None
    #: its settlement's answer (`already_applied`, `voided`), None if never settled
    settlement: str | None


@dataclass(frozen=True, slots=True)
class SagaView:
    saga_id: str
    saga: str
    version: int
    status: str
    #: why a parked (`failed_needs_attention`) saga waits for an operator
    parked_reason: str | None
    params: dict[str, Any]
    steps: tuple[StepView, ...]
    #: step -> its action's result, for the steps whose result a later step reads
    results: dict[str, Any]
    #: every logged event, oldest first (`SagaEvent.as_dict`)
    history: tuple[dict[str, Any], ...]

    @property
    def done(self) -> bool:
        """At rest: terminal, or parked for an operator."""
        return self.status in AT_REST


def saga_view(
    *, saga_id: str, definition: SagaDefinition, params: dict[str, Any], state: SagaState
) -> SagaView:
    steps = []
    for step in definition.steps:
        attempts = [e for e in state.history if e.kind is EventKind.ATTEMPT and e.step == step.name]
        last = {role: _last(attempts, role) for role in StepRole}
        action = last[StepRole.ACTION]
        settlement = last[StepRole.SETTLEMENT]
        steps.append(
            StepView(
                name=step.name,
                kind=step.kind.value,
                action=None if action is None else action.outcome,
                attempts=sum(e.role is StepRole.ACTION for e in attempts),
                compensation=(
                    None
                    if last[StepRole.COMPENSATION] is None
                    else last[StepRole.COMPENSATION].outcome
                ),
                settlement=None if settlement is None else settlement.result,
            )
        )
    return SagaView(
        saga_id=saga_id,
        saga=definition.name,
        version=definition.version,
        status=str(state.status),
        parked_reason=state.parked_reason,
        params=params,
        steps=tuple(steps),
        results={name: data["result"] for name, data in step_results(state.history).items()},
        history=tuple(e.as_dict() for e in state.history),
    )


def _last(attempts: list[Any], role: StepRole) -> Any:
    found = [e for e in attempts if e.role is role and e.outcome is not None]
    return found[-1] if found else None
