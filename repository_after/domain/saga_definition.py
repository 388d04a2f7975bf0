"""What a saga is made of: its definition (steps, their calls and roles) and its log's events.

Pure data, standard library only. A `SagaDefinition` is an ordered tuple of `Step`s; each step
names a remote action and optionally a compensation and a settlement (their roles, `StepRole`).
`Call` is one (step, role) operation the shell performs; a definition builds each of its calls
once and says under which idempotency key each is sent (`KeyScheme`). `SagaEvent` is one entry
of a saga's append-only log. The rules that fold events into a state live in `domain.saga`.

Every step has a kind (`StepKind`), and a definition's shape is checked when it is built, so a
saga that cannot be run safely is refused before anything is logged (`InvalidDefinition`):
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

A step's request body maps body fields to the saga's parameters (a string names a parameter)
or to a field of an earlier step's answer (`FromResult`), so an order's reservation id reaches
its payment; the answer of a step whose fields are used later is kept in the log (`data` of its
successful attempt), so a saga resumed after a crash builds the same bodies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
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


class InvalidDefinition(ValueError):
    """A saga definition whose shape cannot be run safely; the message names the rule broken."""


class StepKind(StrEnum):
    """Where a step stands relative to the saga's point of no return (see the module doc)."""

    COMPENSATABLE = "compensatable"
    PIVOT = "pivot"
    RETRIABLE = "retriable"


class KeyScheme(StrEnum):
    """The idempotency key each call of a saga is sent under.

    `step`: `<saga id>:<step name>` for every role of a step (its action, settlement and
    compensation share one key, which is how a participant relates them and fences a late
    action with a tombstone); one saga may then call one operation in several steps.
    `saga`: the saga id for every call, the transfer's scheme since its first version (its
    account service relates a transfer's debit, credit and their settlements by that id); the
    operations of such a definition must then all differ."""

    STEP = "step"
    SAGA = "saga"


@dataclass(frozen=True, slots=True)
class FromResult:
    """A request field taken from an earlier step's successful answer: `field` of its body."""

    step: str
    field: str


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    service: str
    action: str
    running_status: str
    #: body field -> saga parameter (a string, e.g. {"account_id": "source"}) or a field of an
    #: earlier step's answer (`FromResult("reserve", "reservation_id")`)
    request: Mapping[str, str | FromResult]
    kind: StepKind
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

    def body(
        self, params: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The request body: parameters by name, and the fields taken from earlier answers
        (`results`: step name -> that step's answer body; see `step_results`)."""
        return {
            name: params[source]
            if isinstance(source, str)
            else (results or {})[source.step][source.field]
            for name, source in self.request.items()
        }

    @property
    def parameters(self) -> frozenset[str]:
        """The saga parameters this step's request reads."""
        return frozenset(s for s in self.request.values() if isinstance(s, str))

    def shape(self) -> dict[str, Any]:
        """What a running saga depends on, as plain data (for `SagaDefinition.shape_hash`)."""
        return {
            "name": self.name,
            "service": self.service,
            "kind": self.kind.value,
            "action": self.action,
            "compensation": self.compensation,
            "settlement": self.settlement,
            "running_status": self.running_status,
            "request": {
                k: v if isinstance(v, str) else {"step": v.step, "field": v.field}
                for k, v in sorted(self.request.items())
            },
            "landed": sorted(self.landed_statuses),
            "fenced": sorted(self.fenced_statuses),
        }


@dataclass(frozen=True, slots=True)
class SagaDefinition:
    name: str
    steps: tuple[Step, ...]
    version: int = 1
    keys: KeyScheme = KeyScheme.STEP
    #: Every (step, role) call this definition allows, built once: `next_action` runs several
    #: times per event (docs/performance.md, seventh round).
    _calls: dict[tuple[int, StepRole], Call] = field(init=False, repr=False, compare=False)
    #: step name -> the fields of its answer later steps read (`FromResult`); such a step's
    #: successful answer is logged.
    _results_used: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    #: `shape_hash()`, computed once: every saga started stores it.
    _shape_hash: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(self)
        used: dict[str, set[str]] = {}
        for step in self.steps:
            for source in step.request.values():
                if isinstance(source, FromResult):
                    used.setdefault(source.step, set()).add(source.field)
        object.__setattr__(self, "_results_used", {name: frozenset(f) for name, f in used.items()})
        calls = {}
        for i, step in enumerate(self.steps):
            for role in StepRole:
                with suppress(InvalidTransition):  # a role this step does not have
                    calls[i, role] = Call.of(i, step, role)
        object.__setattr__(self, "_calls", calls)
        shape = {"keys": self.keys.value, "steps": [step.shape() for step in self.steps]}
        text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_shape_hash", hashlib.sha256(text.encode()).hexdigest()[:16])

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

    def key(self, saga_id: str, call: Call) -> str:
        """The idempotency key `call` is sent under (`KeyScheme`)."""
        if self.keys is KeyScheme.SAGA:
            return saga_id
        return f"{saga_id}:{call.step.name}"

    def result_fields(self, step: Step) -> frozenset[str]:
        """The fields of `step`'s answer that later requests read; when not empty, its
        successful answer is logged (`SagaEvent.data`) and must carry them."""
        return self._results_used.get(step.name, frozenset())

    @property
    def services(self) -> frozenset[str]:
        return frozenset(step.service for step in self.steps)

    @property
    def parameters(self) -> frozenset[str]:
        """Every saga parameter some step's request reads."""
        return frozenset().union(*(step.parameters for step in self.steps))

    def retry_horizon(self, *, forward_deadline: float, settle_deadline: float) -> float:
        """Seconds within which this saga's automatic calls can still reach a participant under
        one key: each action within `forward_deadline`, each settlement and compensation within
        `settle_deadline`, one after the other (a participant must keep its records at least
        this long, or a late retry would be applied a second time)."""
        total = 0.0
        for step in self.steps:
            total += forward_deadline
            if step.settlement is not None:
                total += settle_deadline
            if step.compensation is not None:
                total += settle_deadline
        return total

    def shape_hash(self) -> str:
        """A digest of everything a running saga of this definition depends on: a server whose
        definition under the same name and version has another hash must not resume its sagas.
        Every saga stores the hash of the definition it started under (`SagaLog.create`)."""
        return self._shape_hash


_ORDER = {StepKind.COMPENSATABLE: 0, StepKind.PIVOT: 1, StepKind.RETRIABLE: 2}


def _check(definition: SagaDefinition) -> None:
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
    if definition.keys is KeyScheme.SAGA:
        operations = [op for step in steps for op in _operations(step)]
        if len(set(operations)) != len(operations):
            raise refuse(
                f"an operation is used twice under one key per saga: {operations} "
                "(use KeyScheme.STEP)"
            )


def _operations(step: Step) -> list[str]:
    return [op for op in (step.action, step.compensation, step.settlement) if op is not None]


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
    #: the answer body of a successful action whose fields a later step's request reads
    data: Mapping[str, Any] | None = None

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
