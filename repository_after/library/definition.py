"""A saga written as Python callables: `Saga`, its steps, and what each callable receives.

    order = Saga("order", params=OrderParams)

    @order.step(compensate=release_inventory)
    async def reserve_inventory(ctx: StepContext[OrderParams]) -> dict[str, str]: ...

A `Saga` builds an ordinary engine `SagaDefinition` (`domain.saga_definition`), checked by the
same shape rules (`domain.saga_checks`); nothing here decides what happens next. Each step is
one engine `Step` whose service is `<saga>@<version>` and whose operations are
`<step>/act`, `<step>/compensate` and `<step>/settle`: `LocalParticipant` (`participant.py`)
dispatches them to the registered callables. Every call carries the step's idempotency key
`<saga id>:<step>` (`KeyScheme.STEP`: a step's action, compensation and settlement share it).

Kinds are inferred from what a step has, as the engine's shape requires: a step with a
compensation is compensatable; the first one without is the pivot (the point of no return: its
refusal compensates the earlier steps, an unknown outcome is decided by its `settle` callable, or
parks the saga without one); later ones are retriable (retried, never compensated; a refusal
parks the saga). `kind=` overrides the inference (e.g. retriable steps with no pivot).

Results: each callable gets the saga's typed parameters and the results of the earlier steps
(`StepContext.results`). They reach it through the engine's request bodies (`FromResult`), so the
engine logs each result that a later step may read, and a saga resumed after a crash hands the
same results to the same steps. Hence a result must be JSON data, and a step whose outcome may
be settled has none to hand on (its settlement does not carry the action's answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from repository_after.domain.saga import (
    FromResult,
    InvalidDefinition,
    KeyScheme,
    SagaDefinition,
    SagaStatus,
    Step,
    StepKind,
)

P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

#: Body fields the engine builds for every call: `param.<field>` and `result.<step>`.
PARAM, RESULT = "param.", "result."
#: The operations of a step, by role (their service is `Saga.service`).
ACT, COMPENSATE, SETTLE = "act", "compensate", "settle"


class Refused(Exception):
    """A definite business refusal: nothing of the step happened, and retrying will not change
    that. From an action, the saga compensates the steps applied before it (or ends `rejected`
    if there are none; a retriable step's refusal parks the saga); from a compensation, the saga
    parks for an operator. Any other exception is an UNKNOWN outcome: the step may or may not
    have happened, and the engine calls it again with the same key."""


@dataclass(frozen=True, slots=True)
class StepContext(Generic[P]):
    """What a step's callable receives.

    `key` is the step's idempotency key, `<saga id>:<step>`, the same for every attempt of the
    step, its compensation and its settlement, before and after a crash: a side effect made
    exactly once must be recorded under it (e.g. a UNIQUE key column written in the same
    transaction as the effect), so that a second call with the key does nothing again."""

    saga_id: str
    step: str
    key: str
    params: P
    #: earlier step name -> its action's return value (steps with a `settle` excluded)
    results: Mapping[str, Any]


Action = Callable[[StepContext[Any]], Any]
Settle = Callable[[StepContext[Any]], bool | Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class StepHandlers:
    """The callables of one step: the action, and its compensation and settlement, if any."""

    name: str
    action: Action
    compensate: Action | None
    settle: Settle | None
    kind: StepKind | None


class Saga(Generic[P]):
    def __init__(self, name: str, *, params: type[P], version: int = 1) -> None:
        self.name = name
        self.params = params
        self.version = version
        self.handlers: list[StepHandlers] = []
        self._definition: SagaDefinition | None = None

    @property
    def service(self) -> str:
        """The engine service name of this saga's calls (one per version: two versions of one
        saga may run different callables)."""
        return f"{self.name}@{self.version}"

    def step(
        self,
        *,
        name: str | None = None,
        compensate: Action | None = None,
        settle: Settle | None = None,
        kind: StepKind | None = None,
    ) -> Callable[[F], F]:
        """Decorator: the function is the next step's action (its name the step's, unless
        `name`). `compensate` undoes it; `settle` decides an outcome left unknown after every
        retry (True: the action landed; False: it did not and never will: the callable must
        fence it out under the key)."""

        def add(action: F) -> F:
            step = name or action.__name__
            self.add(step, action, compensate=compensate, settle=settle, kind=kind)
            return action

        return add

    def add(
        self,
        name: str,
        action: Action,
        *,
        compensate: Action | None = None,
        settle: Settle | None = None,
        kind: StepKind | None = None,
    ) -> None:
        if self._definition is not None:
            raise InvalidDefinition(f"saga {self.name!r}: a step added after it was first run")
        if "/" in name or name in set(SagaStatus):
            raise InvalidDefinition(f"saga {self.name!r}: {name!r} cannot name a step")
        self.handlers.append(StepHandlers(name, action, compensate, settle, kind))

    def definition(self) -> SagaDefinition:
        """The engine definition (built once, on first use; `InvalidDefinition` names a rule
        the steps break)."""
        if self._definition is None:
            self._definition = SagaDefinition(
                name=self.name, steps=self._steps(), version=self.version, keys=KeyScheme.STEP
            )
        return self._definition

    def _steps(self) -> tuple[Step, ...]:
        params: dict[str, str | FromResult] = {PARAM + f: f for f in self.params.model_fields}
        steps: list[Step] = []
        pivot_seen = False
        for h in self.handlers:
            kind = h.kind
            if kind is None:
                if h.compensate is not None:
                    kind = StepKind.COMPENSATABLE
                else:
                    kind = StepKind.RETRIABLE if pivot_seen else StepKind.PIVOT
            pivot_seen = pivot_seen or kind is not StepKind.COMPENSATABLE
            readable = {
                RESULT + s.name: FromResult(s.name, "result")
                for s, earlier in zip(self.handlers, steps, strict=False)
                if earlier.settlement is None
            }
            steps.append(
                Step(
                    name=h.name,
                    service=self.service,
                    action=f"{h.name}/{ACT}",
                    running_status=h.name,
                    request={**params, **readable},
                    kind=kind,
                    compensation=None if h.compensate is None else f"{h.name}/{COMPENSATE}",
                    settlement=None if h.settle is None else f"{h.name}/{SETTLE}",
                )
            )
        return tuple(steps)


def step_context(
    saga: Saga[Any], *, step: str, key: str, body: Mapping[str, Any]
) -> StepContext[Any]:
    """The context of one call, from the body the engine built for it."""
    params = {k[len(PARAM) :]: v for k, v in body.items() if k.startswith(PARAM)}
    results = {k[len(RESULT) :]: v for k, v in body.items() if k.startswith(RESULT)}
    return StepContext(
        saga_id=key[: -len(step) - 1],
        step=step,
        key=key,
        params=saga.params.model_validate(params),
        results=results,
    )
