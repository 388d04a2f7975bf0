"""Seeded fault injection per operation of a participant, as the account service's on `/credit`
(`service_layer.faults`: the same `FaultInjector`, modes and counts).

A participant's settings (`ParticipantFaults`; in `sagabank serve`, `SAGABANK_PARTICIPANT_FAULTS`)
name the operations that fail, the rate, the mode and the seed. `ParticipantService.perform`
draws once per call of a named operation, alone or as an item of `/batch`:
- `before`: 500 `injected_fault` before anything is read or written: nothing applied, nothing
  recorded (a retry decides afresh; a compensation leaves its tombstone);
- `after`: the call is decided and its transaction COMMITS (applied, a recorded refusal, or a
  replay), then its answer is lost: 500 `injected_fault`. A retry under the same key replays the
  recorded answer; a compensation or settlement under it finds the applied action.
- `mixed`: either, half and half.
A call the kit turns away without committing (422 key reuse, a 409 fence, a 503 storage error)
keeps its own answer, as the account service's business errors do. A batch is answered 200 with
each item's own answer, faulted or not: the envelope itself never fails on purpose.

Each operation draws from its own generator, seeded from (seed, operation name): the same seed
and the same order of calls to that operation replay the same decisions, whatever the other
operations' calls did. Without a seed the decisions differ per start. `view` is what
`GET /faults` answers: per operation its settings and how many faults it injected per point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from repository_after.service_layer.faults import FaultInjector, FaultMode, FaultPoint


class ParticipantFaults(BaseModel):
    """Which operations of one participant fail on purpose, how often, how, from which seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operations: Annotated[list[str], Field(min_length=1, max_length=64)]
    rate: Annotated[float, Field(ge=0.0, le=1.0)]
    mode: FaultMode = FaultMode.BEFORE
    seed: StrictInt | None = None


def operation_seed(seed: int | None, operation: str) -> int | None:
    """The seed of one operation's generator: derived from both, so operations draw apart."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}:{operation}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class OperationFaults:
    """The fault injectors of one participant's operations (none: no operation fails)."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._settings: ParticipantFaults | None = None
        self._injectors: dict[str, FaultInjector] = {}

    def configure(self, settings: ParticipantFaults, *, known: Iterable[str]) -> None:
        """Fail `settings.operations` from now on (counts start at zero); a ValueError names an
        operation not in `known` and changes nothing."""
        names = set(known)
        unknown = [op for op in settings.operations if op not in names]
        if unknown:
            raise ValueError(
                f"{self._service} has no operation {unknown[0]!r} "
                f"(it has: {', '.join(sorted(names))})"
            )
        self._injectors = {
            op: FaultInjector(
                rate=settings.rate,
                mode=settings.mode,
                seed=operation_seed(settings.seed, op),
                operation=f"{self._service} {op}",
            )
            for op in settings.operations
        }
        self._settings = settings

    def draw(self, operation: str, key: str) -> FaultPoint:
        injector = self._injectors.get(operation)
        return FaultPoint.NONE if injector is None else injector.draw(key)

    def view(self) -> dict[str, Any]:
        """`{"rate", "mode", "seed", "operations": {op: {"before": n, "after": n}}}`; rate 0 and
        no operations when none is configured."""
        settings = self._settings
        return {
            "rate": settings.rate if settings else 0.0,
            "mode": (settings.mode if settings else FaultMode.BEFORE).value,
            "seed": settings.seed if settings else None,
            "operations": {
                op: {"before": i.counts.before, "after": i.counts.after}
                for op, i in self._injectors.items()
            },
        }
