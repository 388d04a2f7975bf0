"""Outcome rules at the HTTP edge of the orchestrator, with the account service mocked by respx.

2xx succeeds; a business 4xx is final and never retried; 5xx, timeouts and connection errors are
unknown and retried with the same transaction id; an unknown credit is settled by a void.
"""

from __future__ import annotations

import httpx
import pytest
import respx

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import SagaStatus
from repository_after.domain.transfer import ACCOUNTS, DEFINITIONS, TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy

URL = "http://accounts.test"
PARAMS = {"source": "a", "target": "b", "amount": 100}


def ok(status: str = "applied") -> httpx.Response:
    return httpx.Response(200, json={"status": status})


def fail(code: int, error: str) -> httpx.Response:
    return httpx.Response(code, json={"error": error, "message": error})


@pytest.fixture
def orchestrator() -> Orchestrator:
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002)
    return Orchestrator(
        log=InMemorySagaLog(),
        participant=HttpParticipant({ACCOUNTS: URL}),
        definitions=DEFINITIONS,
        forward=policy,
        settle=policy,
        observers=(),
    )


async def transfer(orchestrator: Orchestrator) -> SagaStatus | str:
    _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id="tx-1")
    return state.status


@respx.mock
async def test_500_then_200_retries_with_the_same_transaction_id(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=ok())
    credit = respx.post(f"{URL}/credit").mock(side_effect=[fail(500, "boom"), ok()])
    assert await transfer(orchestrator) == SagaStatus.COMPLETED
    assert credit.call_count == 2
    ids = {call.request.headers["transaction-id"] for call in credit.calls}
    assert ids == {"tx-1"}


@respx.mock
async def test_timeout_then_success_completes(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(side_effect=[httpx.ReadTimeout("slow"), ok()])
    respx.post(f"{URL}/credit").mock(return_value=ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED


@respx.mock
async def test_connection_error_is_unknown_and_retried(orchestrator) -> None:
    debit = respx.post(f"{URL}/debit").mock(side_effect=[httpx.ConnectError("down"), ok()])
    respx.post(f"{URL}/credit").mock(return_value=ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED
    assert debit.call_count == 2


@respx.mock
async def test_business_4xx_on_debit_is_not_retried_and_rejects(orchestrator) -> None:
    debit = respx.post(f"{URL}/debit").mock(return_value=fail(409, "insufficient_funds"))
    credit = respx.post(f"{URL}/credit")
    assert await transfer(orchestrator) == SagaStatus.REJECTED
    assert debit.call_count == 1
    assert credit.call_count == 0


@respx.mock
async def test_business_4xx_on_credit_compensates_without_retrying(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=ok())
    credit = respx.post(f"{URL}/credit").mock(return_value=fail(404, "account_not_found"))
    compensate = respx.post(f"{URL}/compensate_debit").mock(return_value=ok("compensated"))
    assert await transfer(orchestrator) == SagaStatus.COMPENSATED
    assert credit.call_count == 1
    assert compensate.call_count == 1


@respx.mock
async def test_unknown_credit_settled_as_already_applied_completes(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=ok())
    credit = respx.post(f"{URL}/credit").mock(return_value=fail(500, "injected_fault"))
    void = respx.post(f"{URL}/void_credit").mock(return_value=ok("already_applied"))
    compensate = respx.post(f"{URL}/compensate_debit")
    assert await transfer(orchestrator) == SagaStatus.COMPLETED
    assert credit.call_count == 3
    assert void.call_count == 1
    assert compensate.call_count == 0


@respx.mock
async def test_unknown_credit_settled_as_voided_compensates_the_debit(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=ok())
    respx.post(f"{URL}/credit").mock(return_value=fail(503, "unavailable"))
    respx.post(f"{URL}/void_credit").mock(return_value=ok("voided"))
    compensate = respx.post(f"{URL}/compensate_debit").mock(return_value=ok("compensated"))
    assert await transfer(orchestrator) == SagaStatus.COMPENSATED
    assert compensate.calls.last.request.headers["transaction-id"] == "tx-1"


@respx.mock
async def test_unknown_debit_after_retries_is_compensated(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=fail(500, "boom"))
    credit = respx.post(f"{URL}/credit")
    compensate = respx.post(f"{URL}/compensate_debit").mock(
        return_value=ok("nothing_to_compensate")
    )
    assert await transfer(orchestrator) == SagaStatus.COMPENSATED
    assert credit.call_count == 0
    assert compensate.call_count == 1


@respx.mock
async def test_compensation_failing_every_retry_parks_the_saga(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=ok())
    respx.post(f"{URL}/credit").mock(return_value=fail(409, "transaction_voided"))
    compensate = respx.post(f"{URL}/compensate_debit").mock(return_value=fail(500, "down"))
    assert await transfer(orchestrator) == SagaStatus.FAILED_NEEDS_ATTENTION
    assert compensate.call_count == 3
    compensate.mock(return_value=ok("compensated"))
    state = await orchestrator.retry("tx-1")
    assert state.status == SagaStatus.COMPENSATED


@respx.mock
async def test_429_is_unknown_not_a_business_rejection(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(side_effect=[fail(429, "slow_down"), ok()])
    respx.post(f"{URL}/credit").mock(return_value=ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED


@respx.mock
async def test_2xx_with_an_unreadable_body_is_unknown(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(side_effect=[httpx.Response(200, text="<html>"), ok()])
    respx.post(f"{URL}/credit").mock(return_value=ok())
    assert await transfer(orchestrator) == SagaStatus.COMPLETED


@respx.mock
async def test_every_attempt_is_in_the_history(orchestrator) -> None:
    respx.post(f"{URL}/debit").mock(return_value=ok())
    respx.post(f"{URL}/credit").mock(side_effect=[fail(500, "x"), fail(500, "y"), ok()])
    await transfer(orchestrator)
    stored = await orchestrator.get("tx-1")
    attempts = [(e.operation, e.attempt, e.status_code) for e in stored.events if e.attempt]
    assert attempts == [
        ("debit", 1, 200),
        ("credit", 1, 500),
        ("credit", 2, 500),
        ("credit", 3, 200),
    ]
