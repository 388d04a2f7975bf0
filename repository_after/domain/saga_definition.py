"""What a saga is made of: its definition (an ordered tuple of steps) and its log's events.

Pure data, standard library only. A `SagaDefinition` is an ordered tuple of `Step`s
(`domain.saga_steps`: each names a remote action and optionally a compensation and a
settlement); its shape is checked when it is built (`domain.saga_checks`), so a saga that cannot
be run safely is refused before anything is logged (`InvalidDefinition`). `Call` is one
(step, role) operation the shell performs; a definition builds each of its calls once and says
under which idempotency key each is sent (`KeyScheme`). `SagaEvent` is one entry of a saga's
append-only log. The rules that fold events into a state live in `domain.saga`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from repository_after.domain.saga_checks import check_shape

# Re-exported (`X as X`): the step types are imported from here, and from `domain.saga`.
from repository_after.domain.saga_steps import FromResult as FromResult
from repository_after.domain.saga_steps import InvalidDefinition as InvalidDefinition
from repository_after.domain.saga_steps import InvalidTransition as InvalidTransition
from repository_after.domain.saga_steps import KeyScheme as KeyScheme
from repository_after.domain.saga_steps import Step as Step
from repository_after.domain.saga_steps import StepKind as StepKind
from repository_after.domain.saga_steps import StepRole as StepRole


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
    #: a worker that cannot resume the saga (its definition version is not registered there,
    #: or has another shape) parked it without driving it; `note` says why
    PARKED = "parked"


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
    #: The longest suffix a key adds to the saga id (`:<step>`; 0 if every key is the saga id).
    _key_suffix: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_shape(self)
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
        suffixes = [len(s.name) + 1 for s in self.steps if self.scheme(s) is KeyScheme.STEP]
        object.__setattr__(self, "_key_suffix", max(suffixes, default=0))
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

    def scheme(self, step: Step) -> KeyScheme:
        """The key scheme of `step`'s calls: its own (`Step.key`) if set, else the definition's."""
        return self.keys if step.key is None else step.key

    def key(self, saga_id: str, call: Call) -> str:
        """The idempotency key `call` is sent under (`KeyScheme`)."""
        if self.scheme(call.step) is KeyScheme.SAGA:
            return saga_id
        return f"{saga_id}:{call.step.name}"

    def max_saga_id_length(self, limit: int) -> int:
        """The longest saga id whose every key fits in `limit` characters (a participant's
        limit on its keys): `limit` less the longest `:<step>` suffix this definition adds."""
        return limit - self._key_suffix

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
    #: in choreography, who wrote the event into the saga's course (the service that reacted, or
    #: the API that started it); None for the orchestrator's and the log's own events
    publisher: str | None = None

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
