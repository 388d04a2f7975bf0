"""A saga's course as a message: what it carries, where it goes, under which id.

Payload (JSON object): `saga_id`, `definition`, `version`, `hash` (the definition key the saga
started under: a service that defines it with another shape refuses to act), `params`, `history`
(the saga's events, `SagaEvent.as_dict`) and `kind`:
- `call`: the history ends with a call's intent; routed `call.<service>.<definition>` to the
  service of that call, and seen by the tracker;
- `ended`: the saga is at rest (completed, compensated, rejected or parked); routed
  `ended.<definition>`, to the tracker alone;
- `timeout`: the tracker heard nothing of the pending call for its step's time; routed
  `timeout.<service>.<definition>` to that call's service, which decides it as unknown (or not at
  all, if the call was performed first: `reactor`).
Headers: `sagabank-saga-id`, `sagabank-publisher` (the service that published it: the dashboard
and `sagabank sagas show` say who moved the saga).

Message ids are stable (`message_id_for`): the call message of one turn (`ordinal`) of a step's
role has one id, whoever writes it and however often, so a re-run or a second relay's copy is
absorbed by the receiver's inbox.

Topology (`topology(prefix)`): one topic exchange `<prefix>.events`; a quorum queue per service
bound to its calls and time-outs, and the tracker's queue bound to every call and end; the
dead-letter exchange and queue keep what went over the delivery limit, for `redrive`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from repository_after.domain.choreography import ordinal
from repository_after.domain.saga import SagaDefinition, SagaEvent
from repository_after.messaging.envelope import Message, message_id_for
from repository_after.messaging.ports import DEFAULT_DELIVERY_LIMIT, Topology

SAGA_ID = "sagabank-saga-id"
PUBLISHER = "sagabank-publisher"
TRACKER = "tracker"

#: (name, version) -> the definition; a KeyError for one not registered here.
Lookup = Callable[[str, int], SagaDefinition]


class Kind(StrEnum):
    CALL = "call"
    ENDED = "ended"
    TIMEOUT = "timeout"


class UnknownDefinition(Exception):
    """The message names a definition (or a shape of it) this process does not run."""


@dataclass(frozen=True, slots=True)
class Course:
    saga_id: str
    definition: str
    version: int
    shape_hash: str
    params: Mapping[str, Any]
    history: tuple[SagaEvent, ...]
    kind: Kind = Kind.CALL

    @classmethod
    def of(
        cls,
        saga_id: str,
        definition: SagaDefinition,
        params: Mapping[str, Any],
        history: Sequence[SagaEvent],
        kind: Kind,
    ) -> Course:
        return cls(
            saga_id,
            definition.name,
            definition.version,
            definition.shape_hash(),
            params,
            tuple(history),
            kind,
        )

    def resolve(self, lookup: Lookup) -> SagaDefinition:
        """The definition this saga started under; UnknownDefinition if not this one's."""
        try:
            definition = lookup(self.definition, self.version)
        except KeyError:
            raise UnknownDefinition(f"{self.definition} v{self.version} is not run here") from None
        if definition.shape_hash() != self.shape_hash:
            raise UnknownDefinition(
                f"{self.definition} v{self.version}: shape {self.shape_hash} differs from "
                f"{definition.shape_hash()} here"
            )
        return definition

    def payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "saga_id": self.saga_id,
            "definition": self.definition,
            "version": self.version,
            "hash": self.shape_hash,
            "params": dict(self.params),
            "history": [event.as_dict() for event in self.history],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Course:
        """ValueError (or KeyError, TypeError) for a payload that is not a course."""
        history = tuple(SagaEvent.from_dict(event) for event in payload["history"])
        return cls(
            str(payload["saga_id"]),
            str(payload["definition"]),
            int(payload["version"]),
            str(payload["hash"]),
            dict(payload["params"]),
            history,
            Kind(payload["kind"]),
        )

    def message(self, *, service: str | None, publisher: str) -> Message:
        """This course as a message to `service` (the pending call's; None for `ended`)."""
        turn = ordinal(self.history)
        last = self.history[-1]
        if self.kind is Kind.ENDED:
            routing_key = f"ended.{self.definition}"
            message_id = message_id_for(saga_id=self.saga_id, step=f"#{turn}", role="ended")
        else:
            assert service is not None
            assert last.role is not None
            routing_key = f"{self.kind.value}.{service}.{self.definition}"
            message_id = message_id_for(
                saga_id=self.saga_id,
                step=f"{last.step}#{turn}",
                role=last.role.value if self.kind is Kind.CALL else "timeout",
            )
        return Message(
            message_id=message_id,
            routing_key=routing_key,
            payload=self.payload(),
            headers={SAGA_ID: self.saga_id, PUBLISHER: publisher},
        )


def topology(
    prefix: str, services: Sequence[str], *, delivery_limit: int = DEFAULT_DELIVERY_LIMIT
) -> Topology:
    """`<prefix>.<service>` per service (its calls and time-outs), `<prefix>.tracker` (every
    call and end), and the dead letters' exchange and queue."""
    queues: dict[str, tuple[str, ...]] = {
        name: (f"call.{name}.#", f"timeout.{name}.#") for name in services
    }
    queues[TRACKER] = ("call.#", "ended.#")
    return Topology.named(prefix, queues, delivery_limit=delivery_limit)


def queue_of(topology: Topology, name: str) -> str:
    """The queue of consumer `name` (a service, or `TRACKER`) in `topology`."""
    prefix = topology.exchange.removesuffix(".events")
    return f"{prefix}.{name}"


def unknown_events(logged: Sequence[SagaEvent], history: Sequence[SagaEvent]) -> list[SagaEvent]:
    """The events of a course's `history` the saga log (`logged`) does not hold yet, matched by
    identity (each event's JSON, its publisher included). The log only grows: an event found in
    any read of it stays there."""
    known = {_identity(event) for event in logged}
    return [event for event in history if _identity(event) not in known]


def _identity(event: SagaEvent) -> bytes:
    return orjson.dumps(event.as_dict(), option=orjson.OPT_SORT_KEYS)
