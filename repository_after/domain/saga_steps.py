"""A saga's steps: what each one calls, in which role, under which key, with which body.

Pure data, standard library only. A `Step` names a remote action and optionally a compensation
and a settlement (their roles, `StepRole`); its kind (`StepKind`) says where it stands relative
to the saga's point of no return (the rules are `domain.saga_checks`'). `KeyScheme` says under
which idempotency key its calls are sent.

A step's request body maps body fields to the saga's parameters (a string names a parameter)
or to a field of an earlier step's answer (`FromResult`), so an order's reservation id reaches
its sale; the answer of a step whose fields are used later is kept in the log (`data` of its
successful attempt), so a saga resumed after a crash builds the same bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class InvalidTransition(Exception):
    """An event that the saga's current state does not allow (a bug or a corrupt log)."""


class InvalidDefinition(ValueError):
    """A saga definition whose shape cannot be run safely; the message names the rule broken."""


class StepRole(StrEnum):
    """What a call does for its step: the step's action, the settlement of an unknown action
    (e.g. `void_credit`), or the compensation of an applied one. (Not `config.ProcessRole`, which
    says which half of sagabank a process runs.)"""

    ACTION = "action"
    SETTLEMENT = "settlement"
    COMPENSATION = "compensation"


class StepKind(StrEnum):
    """Where a step stands relative to the saga's point of no return (see the module doc)."""

    COMPENSATABLE = "compensatable"
    PIVOT = "pivot"
    RETRIABLE = "retriable"


class KeyScheme(StrEnum):
    """The idempotency key the calls of a step are sent under.

    `step`: `<saga id>:<step name>` for every role of a step (its action, settlement and
    compensation share one key, which is how a participant relates them and fences a late
    action with a tombstone); one saga may then call one operation in several steps.
    `saga`: the saga id for every call, the transfer's scheme since its first version (its
    account service relates a transfer's debit, credit and their settlements by that id); two
    calls of one service under it must then be different operations.
    A definition has one scheme (`SagaDefinition.keys`); a step may override it (`Step.key`):
    the order saga keys its charge and its payment by the saga id, as a transfer's legs, and
    its other steps per step."""

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
    #: the key scheme of this step's calls; None: the definition's (`SagaDefinition.keys`)
    key: KeyScheme | None = None

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
        """What a running saga depends on, as plain data (for `SagaDefinition.shape_hash`).
        `key` appears only when the step overrides its definition's scheme, so the shapes (and
        hashes) of definitions written before the override existed do not change."""
        shape = {
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
        if self.key is not None:
            shape["key"] = self.key.value
        return shape
