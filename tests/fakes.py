"""Fakes shared by the tests: an in-process participant and a saga log that can "crash".

`LocalParticipant` runs the account-service use cases directly on an account store (no HTTP),
and the operations of any participant-kit service (`services`: the inventory, the orders) through
its `perform`, the answer classified by the HTTP adapter's own rules; with optional scripted
lost answers and a crash switch, so the orchestrator can be driven deterministically through
every crash point. A lost answer ("before": the call never reached the service; "after": it
was decided and committed, refusals included, and the answer died on the way back) is an
unknown outcome, 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repository_after.adapters.http_participant import classify_body
from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.domain.errors import BusinessError
from repository_after.domain.saga import Outcome, SagaEvent
from repository_after.participant_kit import ParticipantService
from repository_after.service_layer import accounts
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_ports import CallResult, Lease, SagaLog


class SimulatedCrash(BaseException):
    """Raised where the process would have died; BaseException so nothing catches it."""


@dataclass
class CallRecord:
    operation: str
    transaction_id: str
    body: dict[str, Any]


#: (operation, call number of that operation) -> "before" | "after": that call's answer is lost
Faults = Callable[[str, int], str | None]


@dataclass
class LocalParticipant:
    store: AccountStore
    faults: Faults = lambda _op, _n: None
    crash_at_call: int | None = None
    crash_after_apply: bool = False
    #: service name -> a participant-kit service; any other service is the account store's
    services: Mapping[str, ParticipantService] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        self.calls.append(CallRecord(operation, transaction_id, body))
        number = len(self.calls)
        crash_here = self.crash_at_call == number
        if crash_here and not self.crash_after_apply:
            raise SimulatedCrash(f"before call {number}")
        nth = sum(1 for c in self.calls if c.operation == operation)
        fault = self.faults(operation, nth)
        if fault == "before":
            if crash_here:  # the call failed, and the process died before hearing so
                raise SimulatedCrash(f"after failed call {number}")
            return CallResult(Outcome.UNKNOWN, 500, "injected_fault")
        answer = await self._decide(service, operation, transaction_id, body)
        if crash_here:
            raise SimulatedCrash(f"after call {number}")
        if fault == "after":
            return CallResult(Outcome.UNKNOWN, 500, "injected_fault")
        return answer

    async def _decide(
        self, service: str, operation: str, transaction_id: str, body: dict[str, Any]
    ) -> CallResult:
        kit = self.services.get(service)
        if kit is not None:
            answer = await kit.perform(operation, transaction_id, kit.parse(operation, body))
            return classify_body(answer.status_code, answer.json())
        request = OperationRequest(
            Operation(operation), transaction_id, body.get("account_id"), body.get("amount")
        )
        try:
            reply = await self.store.transaction(lambda tx: accounts.perform(tx, request))
        except BusinessError as exc:
            return CallResult(Outcome.REJECTED, exc.http_status, exc.code)
        if reply.status_code >= 400:
            return CallResult(Outcome.REJECTED, reply.status_code, str(reply.body["error"]))
        return CallResult(Outcome.SUCCEEDED, reply.status_code, None, reply.body)


class CrashingLog:
    """Wraps a saga log; the `crash_at`-th write raises SimulatedCrash instead of writing."""

    def __init__(self, inner: SagaLog, crash_at: int | None = None) -> None:
        self.inner = inner
        self.crash_at = crash_at
        self.writes = 0

    def _tick(self) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise SimulatedCrash(f"before log write {self.writes}")

    async def create(
        self,
        *,
        saga_id: str,
        definition: str,
        definition_version: int,
        definition_hash: str,
        params: dict[str, Any],
        events: Sequence[SagaEvent],
        status: str = "started",
        owner: str = "",
        ttl: float = 0.0,
    ) -> Lease | None:
        self._tick()
        return await self.inner.create(
            saga_id=saga_id,
            definition=definition,
            definition_version=definition_version,
            definition_hash=definition_hash,
            params=params,
            events=events,
            status=status,
            owner=owner,
            ttl=ttl,
        )

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        self._tick()
        await self.inner.append(saga_id, events, status=status, lease=lease, release=release)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
