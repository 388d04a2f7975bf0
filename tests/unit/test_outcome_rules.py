"""Outcome rules at the HTTP edge of the orchestrator, against a scripted account service:
respx (a mock of httpx) answers each operation from a script. What only a real socket shows
(timeouts, dropped connections, late answers) is in test_http_transport.py and
test_participant_transport.py.

2xx succeeds; a business 4xx is final and never retried; 5xx, timeouts and connection errors are
unknown and retried with the same transaction id; an unknown credit is settled by a void.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import SagaStatus
from repository_after.domain.transfer import ACCOUNTS, DEFINITIONS, TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy

PARAMS = {"source": "a", "target": "b", "amount": 100}


def ok(status: str = "applied") -> dict[str, Any]:
    return {"status": 200, "payload": {"status": status}}


def fail(code: int, error: str) -> dict[str, Any]:
    return {"status": code, "payload": {"error": error, "message": error}}


class Route:
    """One endpoint of the scripted service: answers in order, then repeats the last. An answer
    is a status and JSON payload, a raw `body`, `"slow": True` (longer than the attempt timeout)
    or `"drop": True` (the connection is lost without an answer)."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = [{"status": 404, "payload": {"error": "unscripted"}}]
        self.calls: list[httpx.Request] = []

    def answer(self, *answers: dict[str, Any]) -> Route:
        self.script = list(answers)
        return self

    @property
    def call_count(self) -> int:
        return len(self.calls)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        a = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if a.get("slow"):
            await asyncio.sleep(1.0)  # the attempt's timeout (0.3 s) ends the wait first
        if a.get("drop"):
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        if "body" in a:
            return httpx.Response(a["status"], text=a["body"])
        return httpx.Response(a["status"], json=a["payload"])


class Service:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.url = "http://accounts.test"

    def __call__(self, operation: str) -> Route:
        return self.routes.setdefault(operation, Route())

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return await self(request.url.path.lstrip("/")).handle(request)


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    with respx.mock(using="httpx", assert_all_mocked=True) as router:
        router.post(url__startswith=svc.url).mock(side_effect=svc.handle)
        yield svc


@pytest.fixture
async def orchestrator(service) -> AsyncIterator[Orchestrator]:
    policy = RetryPolicy(
        max_attempts=3, initial_backoff=0.001, max_backoff=0.002, attempt_timeout=0.3
    )
    participant = HttpParticipant({ACCOUNTS: service.url})
    yield Orchestrator(
        log=InMemorySagaLog(),
        participant=participant,
        definitions=DEFINITIONS,
        forward=policy,
        settle=policy,
        observers=(),
    )
    await participant.close()


async def transfer(orchestrator: Orchestrator) -> SagaStatus | str:
    _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id="tx-1")
    return state.status


async def test_500_then_200_retries_with_the_same_transaction_id(orchestrator, service) -> None:
    service("debit").answer(ok())
    credit = service("credit").answer(fail(500, "boom"), ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED
    assert credit.call_count == 2
    ids = {call.headers["transaction-id"] for call in credit.calls}
    assert ids == {"tx-1"}


async def test_timeout_then_success_completes(orchestrator, service) -> None:
    service("debit").answer({"slow": True}, ok())
    service("credit").answer(ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED


async def test_connection_error_is_unknown_and_retried(orchestrator, service) -> None:
    debit = service("debit").answer({"drop": True}, ok())
    service("credit").answer(ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED
    assert debit.call_count == 2


async def test_business_4xx_on_debit_is_not_retried_and_rejects(orchestrator, service) -> None:
    debit = service("debit").answer(fail(409, "insufficient_funds"))
    credit = service("credit")
    assert await transfer(orchestrator) == SagaStatus.REJECTED
    assert debit.call_count == 1
    assert credit.call_count == 0


async def test_business_4xx_on_credit_compensates_without_retrying(orchestrator, service) -> None:
    service("debit").answer(ok())
    credit = service("credit").answer(fail(404, "account_not_found"))
    compensate = service("compensate_debit").answer(ok("compensated"))
    assert await transfer(orchestrator) == SagaStatus.COMPENSATED
    assert credit.call_count == 1
    assert compensate.call_count == 1


async def test_unknown_credit_settled_as_already_applied_completes(orchestrator, service) -> None:
    service("debit").answer(ok())
    credit = service("credit").answer(fail(500, "injected_fault"))
    void = service("void_credit").answer(ok("already_applied"))
    compensate = service("compensate_debit")
    assert await transfer(orchestrator) == SagaStatus.COMPLETED
    assert credit.call_count == 3
    assert void.call_count == 1
    assert compensate.call_count == 0


async def test_unknown_credit_settled_as_voided_compensates_the_debit(
    orchestrator, service
) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(503, "unavailable"))
    service("void_credit").answer(ok("voided"))
    compensate = service("compensate_debit").answer(ok("compensated"))
    assert await transfer(orchestrator) == SagaStatus.COMPENSATED
    assert compensate.calls[-1].headers["transaction-id"] == "tx-1"


async def test_unknown_debit_after_retries_is_compensated(orchestrator, service) -> None:
    service("debit").answer(fail(500, "boom"))
    credit = service("credit")
    compensate = service("compensate_debit").answer(ok("nothing_to_compensate"))
    assert await transfer(orchestrator) == SagaStatus.COMPENSATED
    assert credit.call_count == 0
    assert compensate.call_count == 1


async def test_compensation_failing_every_retry_parks_the_saga(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(409, "transaction_voided"))
    compensate = service("compensate_debit").answer(fail(500, "down"))
    assert await transfer(orchestrator) == SagaStatus.FAILED_NEEDS_ATTENTION
    assert compensate.call_count == 3
    compensate.answer(ok("compensated"))
    state = await orchestrator.retry("tx-1")
    assert state.status == SagaStatus.COMPENSATED


async def test_429_is_unknown_not_a_business_rejection(orchestrator, service) -> None:
    service("debit").answer(fail(429, "slow_down"), ok())
    service("credit").answer(ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED


async def test_2xx_with_an_unreadable_body_is_unknown(orchestrator, service) -> None:
    service("debit").answer({"status": 200, "body": "<html>"}, ok())
    service("credit").answer(ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED


async def test_every_attempt_is_in_the_history(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(500, "x"), fail(500, "y"), ok())
    await transfer(orchestrator)
    stored = await orchestrator.get("tx-1")
    attempts = [(e.operation, e.attempt, e.status_code) for e in stored.events if e.attempt]
    assert attempts == [
        ("debit", 1, 200),
        ("credit", 1, 500),
        ("credit", 2, 500),
        ("credit", 3, 200),
    ]
