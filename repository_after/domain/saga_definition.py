"""What a saga is made of: its definition (steps, their calls and roles) and its log's events.

Pure data, standard library only. A `SagaDefinition` is an ordered tuple of `Step`s; each step
names a remote action and optionally a compensation and a settlement (their roles, `StepRole`).
`Call` is one (step, role) operation the shell performs with the saga id as its idempotency key;
a definition builds each of its calls once. `SagaEvent` is one entry of a saga's append-only log.
The rules that fold events into a state live in `domain.saga`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class SagaStatus(StrEnum):
    STARTED = "started"
    COMPLETED = "completed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    REJECTED = "rejected"
    FAILED_NEEDS_ATTENTION = "failed_needs_attention"
    RESOLVED = "resolved"


TERMINAL = frozenset(
    {SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.REJECTED, SagaStatus.RESOLVED}
)
#: Statuses nobody drives automatically: the terminal ones AND the parked one
#: (`failed_needs_attention`, which an operator may still retry). Not "settled": a parked saga
#: is not done, it waits for a person.
AT_REST = TERMINAL | {SagaStatus.FAILED_NEEDS_ATTENTION}


class StepRole(StrEnum):
    """What a call does for its step: the step's action, the settlement of an unknown action
    (e.g. `void_credit`), or the compensation of an applied one. (Not `config.ProcessRole`, which
    says which half of sagabank a process runs.)"""

    ACTION = "action"
    SETTLEMENT = "settlement"
    COMPENSATION = "compensation"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class EventKind(StrEnum):
    STARTED = "started"
    OPERATION_STARTED = "operation_started"
    ATTEMPT = "attempt"
    RETRIES_EXHAUSTED = "retries_exhausted"
    OPERATOR_RETRY = "operator_retry"
    OPERATOR_RESOLVE = "operator_resolve"


class InvalidTransition(Exception):
    """An event that the saga's current state does not allow (a bug or a corrupt log)."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    service: str
    action: str
    running_status: str
    #: body field -> saga parameter, e.g. {"account_id": "source", "amount": "amount"}
    request: Mapping[str, str]
    compensation: str | None = None
    settlement: str | None = None
    #: settlement answers (body "status") that mean the action did land ...
    landed_statuses: frozenset[str] = frozenset({"already_applied"})
    #: ... and those that mean it never will; any other answer parks the saga (fail closed)
    fenced_statuses: frozenset[str] = frozenset({"voided"})

    def operation(self, role: StepRole) -> str:
        if role is StepRole.ACTION:
            op: str | None = self.action
        elif role is StepRole.SETTLEMENT:
            op = self.settlement
        else:
            op = self.compensation
        if op is None:
            raise InvalidTransition(f"step {self.name} has no {role.value}")
        return op

    def body(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {field_name: params[param] for field_name, param in self.request.items()}


@dataclass(frozen=True, slots=True)
class SagaDefinition:
    name: str
    steps: tuple[Step, ...]
    #: Every (step, role) call this definition allows, built once: `next_action` runs several
    #: times per event (docs/performance.md, seventh round).
    _calls: dict[tuple[int, StepRole], Call] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        calls = {}
        for i, step in enumerate(self.steps):
            for role in StepRole:
                with suppress(InvalidTransition):  # a role this step does not have
                    calls[i, role] = Call.of(i, step, role)
        object.__setattr__(self, "_calls", calls)

    def call(self, step_index: int, role: StepRole) -> Call:
        """The call of that step in that role; InvalidTransition if the step has no such role,
        or the definition no such step."""
        found = self._calls.get((step_index, role))
        if found is None:  # not one of the calls built: say why, never build another
            if 0 <= step_index < len(self.steps):
                self.steps[step_index].operation(role)  # raises: the step has no such role
            raise InvalidTransition(f"{self.name} has no step {step_index}")
        return found

    def index(self, step_name: str) -> int:
        for i, step in enumerate(self.steps):
            if step.name == step_name:
                return i
        raise InvalidTransition(f"{self.name} has no step {step_name!r}")


class SagaEvent(NamedTuple):
    """One entry of a saga's log. A named tuple: immutable, and cheap to build (several per
    transfer, docs/performance.md)."""

    kind: EventKind
    at: str
    step: str | None = None
    role: StepRole | None = None
    operation: str | None = None
    outcome: Outcome | None = None
    attempt: int | None = None
    status_code: int | None = None
    error: str | None = None
    result: str | None = None
    started_at: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in zip(_EVENT_FIELDS, self, strict=True) if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SagaEvent:
        values = dict(data)
        values["kind"] = EventKind(values["kind"])
        if "role" in values:
            values["role"] = StepRole(values["role"])
        if "outcome" in values:
            values["outcome"] = Outcome(values["outcome"])
        return cls(**values)


_EVENT_FIELDS = SagaEvent._fields


class Call(NamedTuple):
    """The next remote operation the shell must perform (with the saga id as its key). A named
    tuple, like the state; each definition builds its calls once (`SagaDefinition.call`)."""

    step_index: int
    step: Step
    role: StepRole
    operation: str

    @classmethod
    def of(cls, step_index: int, step: Step, role: StepRole) -> Call:
        return cls(step_index, step, role, step.operation(role))
