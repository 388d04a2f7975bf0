"""Fakes shared by the tests: an in-process participant and a saga log that can "crash".

`LocalParticipant` runs the account-service use cases directly on an account store (no HTTP),
with optional scripted answers and a crash switch, so the orchestrator can be driven
deterministically through every crash point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.domain.errors import BusinessError
from repository_after.domain.saga import Outcome, SagaEvent
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


@dataclass
class LocalParticipant:
    store: AccountStore
    #: (operation, call number of that operation) -> "before" | "after": answer 500 then
    faults: Callable[[str, int], str | None] = lambda _op, _n: None
    crash_at_call: int | None = None
    crash_after_apply: bool = False
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
        request = OperationRequest(
            Operation(operation), transaction_id, body.get("account_id"), body.get("amount")
        )
        try:
            reply = await self.store.transaction(
                lambda tx: accounts.HANDLERS[request.operation](tx, request)
            )
        except BusinessError as exc:
            return CallResult(Outcome.REJECTED, exc.http_status, exc.code)
        if crash_here:
            raise SimulatedCrash(f"after call {number}")
        if fault == "after":
            return CallResult(Outcome.UNKNOWN, 500, "injected_fault")
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
