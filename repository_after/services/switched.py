"""A kit participant whose actions fail on demand, and a journal of every call it answered: the
test rig of the A → B → C failure matrix (`services/abc.py`, docs/sagas.md), usable for any kit
service.

`SwitchedService` is a `ParticipantService` with a `switch`: the fault its next action calls
get (`Switch.fault`), for `times` calls or for every one (`times=None`). Compensations and
settlements are never switched: the matrix is about a failing step, not a failing undo.
- `refuse`: the handler raises the definite refusal 409 `refused` (recorded and replayed by the
  kit like any business refusal; the handler's writes undone);
- `unknown_before`: 500 `injected_fault` before anything is read or written (nothing applied);
- `unknown_after`: the call is decided and COMMITS, then its answer is lost (500
  `injected_fault`), as the kit's `after` faults;
- `slow_before`: the call is held BEFORE it is decided, until `release_held`: the caller times
  out, and the call is decided only then (a late delivery: the kit's tombstone refuses it if the
  step was compensated meanwhile, a replay if a retry applied it);
- `slow_after`: the call is decided and commits, and its answer is held until `release_held`
  (the caller timed out on a call that applied).

The journal (`Journal`, one shared by the services of a test, so its numbers order calls across
services) notes every answer the service gave, in the order it gave them, with what the kit
decided (status, word, replay) and what the switch did to the answer (`lost`, `late`).
Invariant: a held call is answered, and noted, only after `release_held` lets it go; held calls
go one at a time in the order they arrived, each answered before the next goes, so the journal
is the same on every run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel

from repository_after.participant_kit import Kind, ParticipantService, ParticipantStore, Refusal
from repository_after.participant_kit.records import Answer, error
from repository_after.participant_kit.rules import Action, Compensation, Handler, TombstoneBody
from repository_after.participant_kit.rules import tombstone_body as default_tombstone
from repository_after.participant_kit.storage import Tx


class Fault(StrEnum):
    REFUSE = "refuse"
    UNKNOWN_BEFORE = "unknown_before"
    UNKNOWN_AFTER = "unknown_after"
    SLOW_BEFORE = "slow_before"
    SLOW_AFTER = "slow_after"


@dataclass
class Switch:
    """The fault of the next `times` action calls (None: of every one); no fault: none."""

    fault: Fault | None = None
    times: int | None = None

    def draw(self) -> Fault | None:
        if self.fault is None or self.times == 0:
            return None
        if self.times is not None:
            self.times -= 1
        return self.fault


@dataclass(frozen=True, slots=True)
class Noted:
    """One answer a service gave: `A.do 200 done (replay), answer lost`."""

    seq: int
    service: str
    operation: str
    key: str
    status_code: int
    word: str
    replayed: bool
    what: str | None  # "answer lost" / "answered late": what the switch did to the answer

    def __str__(self) -> str:
        line = f"{self.service}.{self.operation} {self.status_code} {self.word}"
        line += " (replay)" if self.replayed else ""
        return line + (f", {self.what}" if self.what else "")


@dataclass
class Journal:
    """Every answer of the services sharing it, numbered in the order they were given."""

    calls: list[Noted] = field(default_factory=list)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def note(
        self, service: str, operation: str, key: str, answer: Answer, what: str | None
    ) -> None:
        body: dict[str, Any] = orjson.loads(answer.body)
        word = str(body.get("status") or body.get("error"))
        self.calls.append(
            Noted(
                next(self._seq),
                service,
                operation,
                key,
                answer.status_code,
                word,
                answer.replayed,
                what,
            )
        )

    def lines(self) -> list[str]:
        return [str(call) for call in self.calls]


@dataclass
class _Held:
    go: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)


class SwitchedService(ParticipantService):
    """A kit service with a `switch` on its actions and a `journal` of its answers (above)."""

    def __init__(self, name: str, store: ParticipantStore, journal: Journal) -> None:
        super().__init__(name, store)
        self.switch = Switch()
        self.journal = journal
        self._refusing: set[str] = set()
        self._held: list[_Held] = []

    def action(
        self,
        name: str,
        model: type[BaseModel] | None,
        handler: Handler[Tx],
        *,
        compensation: Compensation[Tx] | None = None,
        settlement: str | None = None,
        tombstone: TombstoneBody = default_tombstone,
    ) -> Action[Tx]:
        def switched(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
            # Decided in `perform` (a handler may run twice for one call: it only reads here).
            if key in self._refusing:
                raise Refusal("refused", f"{self.name} refuses {name} (its switch)")
            return handler(tx, key, body)

        return super().action(
            name,
            model,
            switched,
            compensation=compensation,
            settlement=settlement,
            tombstone=tombstone,
        )

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer:
        kind, _ = self.operations[operation]
        fault = self.switch.draw() if kind is Kind.ACTION else None
        if fault is Fault.UNKNOWN_BEFORE:
            lost = error(500, "injected_fault", f"injected fault before the {operation}")
            self.journal.note(self.name, operation, key, lost, None)
            return lost
        held = _Held() if fault in (Fault.SLOW_BEFORE, Fault.SLOW_AFTER) else None
        if held is not None:
            self._held.append(held)
        if fault is Fault.SLOW_BEFORE and held is not None:
            await held.go.wait()
        if fault is Fault.REFUSE:
            self._refusing.add(key)
        try:
            answer = await super().perform(operation, key, body)
        finally:
            self._refusing.discard(key)
        if fault is Fault.SLOW_AFTER and held is not None:
            await held.go.wait()
        what = "answer lost" if fault is Fault.UNKNOWN_AFTER else None
        if held is not None:
            what = "answered late"
        self.journal.note(self.name, operation, key, answer, what)
        if held is not None:
            held.answered.set()
        if fault is Fault.UNKNOWN_AFTER:
            return error(500, "injected_fault", "injected fault: the answer was lost")
        return answer

    async def release_held(self) -> int:
        """Let the held calls go, one at a time in arrival order, each answered before the
        next goes; how many went."""
        released, self._held = self._held, []
        for held in released:
            held.go.set()
            await held.answered.wait()
        return len(released)
