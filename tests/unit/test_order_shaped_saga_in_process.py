"""The engine drives a saga other than the transfer end to end, in process: one key per step,
a request built from an earlier step's answer, a retriable step after the pivot, compensation in
reverse with each step's own key, and a takeover after a crash that builds the same requests from
the log (not from the memory of the worker that died).

The participants are a small in-memory fake that records every call (service, operation, key,
body) and answers as a real one would; the rules they must keep (exactly once per key, replay)
are the participant kit's and are tested there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import (
    EventKind,
    FromResult,
    Outcome,
    SagaDefinition,
    SagaStatus,
    Step,
    StepKind,
)
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult

ORDER = SagaDefinition(
    "order",
    (
        Step(
            "create",
            "orders",
            "create",
            "creating",
            {"order_id": "order_id", "customer": "customer"},
            StepKind.COMPENSATABLE,
            compensation="cancel",
        ),
        Step(
            "reserve",
            "inventory",
            "reserve",
            "reserving",
            {"lines": "lines"},
            StepKind.COMPENSATABLE,
            compensation="release",
        ),
        Step(
            "pay",
            "payment",
            "pay",
            "paying",
            {
                "customer": "customer",
                "amount": "total",
                "reservation": FromResult("reserve", "reservation_id"),
            },
            StepKind.PIVOT,
        ),
        Step(
            "confirm",
            "orders",
            "confirm",
            "confirming",
            {"order_id": "order_id", "reservation": FromResult("reserve", "reservation_id")},
            StepKind.RETRIABLE,
        ),
    ),
)
PARAMS = {
    "order_id": "o-1",
    "customer": "c-1",
    "total": 250,
    "lines": [{"sku": "pen", "qty": 2}, {"sku": "ink", "qty": 1}],
}
POLICY = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)


@dataclass
class Services:
    """Every call answered from its (operation, key) record once made, as a participant does;
    `refuse` makes an operation a definite refusal; `hold` pauses it until `go` is set."""

    refuse: set[str] = field(default_factory=set)
    hold: str | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    records: dict[tuple[str, str], CallResult] = field(default_factory=dict)

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        self.calls.append((service, operation, transaction_id, body))
        if operation == self.hold:
            self.entered.set()
            await self.go.wait()
        answer = self.records.get((operation, transaction_id))
        if answer is None:
            if operation in self.refuse:
                answer = CallResult(Outcome.REJECTED, 409, f"{operation}_refused")
            else:
                reply: dict[str, Any] = {"status": f"{operation}_done"}
                if operation == "reserve":
                    reply["reservation_id"] = f"r-for-{transaction_id}"
                answer = CallResult(Outcome.SUCCEEDED, 200, None, reply)
            self.records[operation, transaction_id] = answer
        return answer


def worker(log: InMemorySagaLog, services: Services, name: str, ttl: float = 60.0) -> Orchestrator:
    return Orchestrator(
        log=log,
        participant=services,
        definitions={ORDER.name: ORDER},
        forward=POLICY,
        settle=POLICY,
        observers=(),
        worker_id=name,
        lease_ttl=ttl,
    )


CREATE = ("orders", "create", "o-1:create", {"order_id": "o-1", "customer": "c-1"})
RESERVE = ("inventory", "reserve", "o-1:reserve", {"lines": PARAMS["lines"]})
PAY = (
    "payment",
    "pay",
    "o-1:pay",
    {"customer": "c-1", "amount": 250, "reservation": "r-for-o-1:reserve"},
)
CONFIRM = (
    "orders",
    "confirm",
    "o-1:confirm",
    {"order_id": "o-1", "reservation": "r-for-o-1:reserve"},
)


async def test_each_step_is_sent_under_its_own_key_with_what_earlier_steps_answered() -> None:
    log, services = InMemorySagaLog(), Services()
    orders = worker(log, services, "a")
    await orders.start(ORDER.name, PARAMS, saga_id="o-1")
    assert (await orders.drive("o-1")).status is SagaStatus.COMPLETED
    assert services.calls == [CREATE, RESERVE, PAY, CONFIRM]
    stored = await log.load("o-1")
    assert stored is not None
    kept = [(e.step, e.data) for e in stored.events if e.kind is EventKind.ATTEMPT and e.data]
    assert kept == [  # only the answer a later request reads is logged
        ("reserve", {"status": "reserve_done", "reservation_id": "r-for-o-1:reserve"})
    ]


async def test_a_refused_pivot_compensates_in_reverse_each_under_its_steps_key() -> None:
    log, services = InMemorySagaLog(), Services(refuse={"pay"})
    orders = worker(log, services, "a")
    await orders.start(ORDER.name, PARAMS, saga_id="o-1")
    assert (await orders.drive("o-1")).status is SagaStatus.COMPENSATED
    assert services.calls == [
        CREATE,
        RESERVE,
        PAY,
        ("inventory", "release", "o-1:reserve", {"lines": PARAMS["lines"]}),
        ("orders", "cancel", "o-1:create", {"order_id": "o-1", "customer": "c-1"}),
    ]


async def test_a_refused_retriable_step_parks_the_order_and_undoes_nothing() -> None:
    log, services = InMemorySagaLog(), Services(refuse={"confirm"})
    orders = worker(log, services, "a")
    await orders.start(ORDER.name, PARAMS, saga_id="o-1")
    state = await orders.drive("o-1")
    assert (state.status, state.parked_reason) == (
        SagaStatus.FAILED_NEEDS_ATTENTION,
        "confirm on confirm refused: confirm_refused",
    )
    assert services.calls == [CREATE, RESERVE, PAY, CONFIRM]


async def test_a_worker_taking_over_builds_the_payment_from_the_log() -> None:
    """Worker A dies inside the payment call (its lease lapses at once); B claims the saga and
    must send the same payment: same key, and the reservation id read back from the log."""
    log = InMemorySagaLog()
    dying = Services(hold="pay")
    a = worker(log, dying, "a", ttl=0.0)
    await a.start(ORDER.name, PARAMS, saga_id="o-1")
    driving = asyncio.ensure_future(a.drive("o-1"))
    await asyncio.wait_for(dying.entered.wait(), timeout=10)  # A is inside the payment call
    survivor = Services(records=dict(dying.records))  # the participants' own records survive
    b = worker(log, survivor, "b")
    assert await b.claim() == ["o-1"]
    assert (await b.drive("o-1")).status is SagaStatus.COMPLETED
    assert survivor.calls == [PAY, CONFIRM]
    driving.cancel()
    await asyncio.gather(driving, return_exceptions=True)
