"""Outcome rules at the HTTP edge of the orchestrator, against a scripted account service:
respx (a mock of httpx) answers each operation from a script. What only a real socket shows
(timeouts, dropped connections, late answers) is in test_http_transport.py and
test_participant_transport.py.

2xx with a JSON object succeeds; a 2xx whose body cannot be read (a proxy's HTML error page) is
unknown; a business 4xx is final and never retried; 5xx, timeouts and connection errors are
unknown and retried with the same transaction id; an unknown credit is settled by asking
`void_credit`, and only its answer decides between completing and compensating.

Every test asserts the exact calls the account service saw, in order, as (operation,
transaction id): a final state alone cannot tell "asked `void_credit`, was told `voided`, then
compensated" from "guessed `voided` without asking", nor "retried an unreadable 2xx" from "took
it for an applied debit and went on" when the retry would have succeeded anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
import respx

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, Outcome, SagaState, SagaStatus
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import ACCOUNTS, TRANSFER
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy

PARAMS = {"source": "a", "target": "b", "amount": 100}
TX = "tx-1"
DEBIT, CREDIT = ("debit", TX), ("credit", TX)
VOID, COMPENSATE = ("void_credit", TX), ("compensate_debit", TX)


def ok(status: str = "applied") -> dict[str, Any]:
    return {"status": 200, "payload": {"status": status}}


def fail(code: int, error: str) -> dict[str, Any]:
    return {"status": code, "payload": {"error": error, "message": error}}


class Route:
    """One endpoint of the scripted service: answers in order, then repeats the last. An answer
    is a status and JSON payload, a raw `body`, `"slow": True` (longer than the attempt timeout),
    `"drop": True` (the connection is lost without an answer), `"hold": event` (wait for the
    event first) or, for `/batch`, `"each": result` (that result for every item)."""

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
        if "hold" in a:
            await a["hold"].wait()
        if a.get("slow"):
            await asyncio.sleep(1.0)  # the attempt's timeout (0.3 s) ends the wait first
        if a.get("drop"):
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        if "each" in a:
            items = orjson.loads(request.content)["operations"]
            return httpx.Response(a["status"], json={"results": [a["each"]] * len(items)})
        if "body" in a:
            return httpx.Response(a["status"], text=a["body"])
        return httpx.Response(a["status"], json=a["payload"])


class Service:
    """The scripted account service. `calls` is every operation it was asked, in arrival order,
    as (operation, transaction id); a `/batch` adds one entry per item, in item order."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.calls: list[tuple[str, str]] = []
        self.url = "http://accounts.test"

    def __call__(self, operation: str) -> Route:
        return self.routes.setdefault(operation, Route())

    def calls_of(self, transaction_id: str) -> list[str]:
        return [op for op, tx in self.calls if tx == transaction_id]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        operation = request.url.path.lstrip("/")
        if operation == "batch":
            items = orjson.loads(request.content)["operations"]
            self.calls.extend((i["operation"], i["transaction_id"]) for i in items)
        else:
            self.calls.append((operation, request.headers["transaction-id"]))
        return await self(operation).handle(request)


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    with respx.mock(using="httpx", assert_all_mocked=True) as router:
        router.post(url__startswith=svc.url).mock(side_effect=svc.handle)
        yield svc


def build(participant: HttpParticipant, *, attempt_timeout: float = 0.3) -> Orchestrator:
    policy = RetryPolicy(
        max_attempts=3, initial_backoff=0.001, max_backoff=0.002, attempt_timeout=attempt_timeout
    )
    return Orchestrator(
        log=InMemorySagaLog(),
        participant=participant,
        definitions=DEFINITIONS,
        forward=policy,
        settle=policy,
        observers=(),
    )


@pytest.fixture
async def orchestrator(service) -> AsyncIterator[Orchestrator]:
    participant = HttpParticipant({ACCOUNTS: service.url})
    yield build(participant)
    await participant.close()


async def transfer(orchestrator: Orchestrator) -> SagaState:
    _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id=TX)
    return state


def attempts(state: SagaState) -> list[tuple[str | None, Outcome | None, str | None]]:
    return [(e.operation, e.outcome, e.error) for e in state.history if e.kind is EventKind.ATTEMPT]


async def test_500_then_200_retries_with_the_same_transaction_id(orchestrator, service) -> None:
    service("debit").answer(ok())
    credit = service("credit").answer(fail(500, "boom"), ok())
    assert (await transfer(orchestrator)).status == SagaStatus.COMPLETED
    assert service.calls == [DEBIT, CREDIT, CREDIT]
    assert {call.headers["transaction-id"] for call in credit.calls} == {TX}


async def test_timeout_then_success_completes(orchestrator, service) -> None:
    service("debit").answer({"slow": True}, ok())
    service("credit").answer(ok())
    assert (await transfer(orchestrator)).status == SagaStatus.COMPLETED
    assert service.calls == [DEBIT, DEBIT, CREDIT]


async def test_connection_error_is_unknown_and_retried(orchestrator, service) -> None:
    service("debit").answer({"drop": True}, ok())
    service("credit").answer(ok())
    assert (await transfer(orchestrator)).status == SagaStatus.COMPLETED
    assert service.calls == [DEBIT, DEBIT, CREDIT]


async def test_business_4xx_on_debit_is_not_retried_and_rejects(orchestrator, service) -> None:
    service("debit").answer(fail(409, "insufficient_funds"))
    assert (await transfer(orchestrator)).status == SagaStatus.REJECTED
    # Nothing was debited: no retry, no credit, and nothing to compensate.
    assert service.calls == [DEBIT]


async def test_business_4xx_on_credit_compensates_without_retrying(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(404, "account_not_found"))
    service("compensate_debit").answer(ok("compensated"))
    assert (await transfer(orchestrator)).status == SagaStatus.COMPENSATED
    # A definite refusal needs no void: the credit did not happen.
    assert service.calls == [DEBIT, CREDIT, COMPENSATE]


async def test_unknown_credit_settled_as_already_applied_completes(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(500, "injected_fault"))
    service("void_credit").answer(ok("already_applied"))
    assert (await transfer(orchestrator)).status == SagaStatus.COMPLETED
    assert service.calls == [DEBIT, CREDIT, CREDIT, CREDIT, VOID]


async def test_unknown_credit_settled_as_voided_compensates_the_debit(
    orchestrator, service
) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(503, "unavailable"))
    service("void_credit").answer(ok("voided"))
    service("compensate_debit").answer(ok("compensated"))
    state = await transfer(orchestrator)
    assert state.status == SagaStatus.COMPENSATED
    # The debit is compensated only after `void_credit` said, with the same key, that the
    # credit never lands: an orchestrator that guessed "voided" would skip VOID here.
    assert service.calls == [DEBIT, CREDIT, CREDIT, CREDIT, VOID, COMPENSATE]
    assert ("void_credit", Outcome.SUCCEEDED, None) in attempts(state)


async def test_unknown_credit_whose_void_stays_unknown_parks_without_compensating(
    orchestrator, service
) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(500, "boom"))
    service("void_credit").answer(fail(500, "down"))
    state = await transfer(orchestrator)
    # The credit may have landed: compensating the debit could create money. A person decides.
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION
    assert service.calls == [DEBIT, CREDIT, CREDIT, CREDIT, VOID, VOID, VOID]


async def test_a_void_answer_that_is_neither_landed_nor_voided_parks(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(500, "boom"))
    service("void_credit").answer(ok("pending"))
    state = await transfer(orchestrator)
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION
    assert service.calls == [DEBIT, CREDIT, CREDIT, CREDIT, VOID]


async def test_unknown_debit_after_retries_is_compensated(orchestrator, service) -> None:
    service("debit").answer(fail(500, "boom"))
    service("compensate_debit").answer(ok("nothing_to_compensate"))
    assert (await transfer(orchestrator)).status == SagaStatus.COMPENSATED
    # Possibly applied: compensated (its tombstone fences a late debit), never credited.
    assert service.calls == [DEBIT, DEBIT, DEBIT, COMPENSATE]


async def test_compensation_failing_every_retry_parks_the_saga(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(409, "transaction_voided"))
    compensate = service("compensate_debit").answer(fail(500, "down"))
    assert (await transfer(orchestrator)).status == SagaStatus.FAILED_NEEDS_ATTENTION
    assert service.calls == [DEBIT, CREDIT, COMPENSATE, COMPENSATE, COMPENSATE]
    compensate.answer(ok("compensated"))
    state = await orchestrator.retry(TX)
    assert state.status == SagaStatus.COMPENSATED
    # The operator's retry resumes the compensation, with the same key; nothing else is re-sent.
    assert service.calls == [DEBIT, CREDIT, *[COMPENSATE] * 4]


async def test_429_is_unknown_not_a_business_rejection(orchestrator, service) -> None:
    service("debit").answer(fail(429, "slow_down"), ok())
    service("credit").answer(ok())
    assert (await transfer(orchestrator)).status == SagaStatus.COMPLETED
    assert service.calls == [DEBIT, DEBIT, CREDIT]


@pytest.mark.parametrize("body", ["<html><h1>502 Bad Gateway</h1></html>", "", "[1]", "NaN"])
async def test_2xx_with_an_unreadable_body_is_unknown(orchestrator, service, body: str) -> None:
    service("debit").answer({"status": 200, "body": body}, ok())
    service("credit").answer(ok())
    state = await transfer(orchestrator)
    assert state.status == SagaStatus.COMPLETED
    # The debit is asked again with the same key (the participant replays it if it landed);
    # taking the page for an applied debit would have gone straight on to the credit.
    assert service.calls == [DEBIT, DEBIT, CREDIT]
    assert attempts(state)[0] == ("debit", Outcome.UNKNOWN, "unreadable_body")


async def test_a_2xx_that_is_never_readable_leaves_the_debit_unknown_and_compensates_it(
    orchestrator, service
) -> None:
    service("debit").answer({"status": 200, "body": "<html>proxy error</html>"})
    service("compensate_debit").answer(ok("nothing_to_compensate"))
    assert (await transfer(orchestrator)).status == SagaStatus.COMPENSATED
    # Never "applied": no credit follows, and the possibly applied debit is compensated.
    assert service.calls == [DEBIT, DEBIT, DEBIT, COMPENSATE]


async def test_a_void_answer_that_is_unreadable_is_asked_again(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(500, "boom"))
    service("void_credit").answer({"status": 200, "body": "<html>"}, ok("already_applied"))
    assert (await transfer(orchestrator)).status == SagaStatus.COMPLETED
    assert service.calls == [DEBIT, CREDIT, CREDIT, CREDIT, VOID, VOID]


async def until(condition: Callable[[], bool], *, rounds: int = 5000) -> None:
    """Let the event loop run until `condition()` holds (bounded: fails rather than hangs)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


@pytest.mark.parametrize(
    "garbled",
    [
        # Every item a 2xx whose body is not a JSON object (an item's answer cannot be read).
        {"status": 200, "each": {"status_code": 200, "body": "<html>", "replayed": False}},
        # The batch's answer as a whole is a 200 HTML page: no item's answer is known.
        {"status": 200, "body": "<html><h1>502 Bad Gateway</h1></html>"},
    ],
    ids=["unreadable-items", "unreadable-batch"],
)
async def test_an_unreadable_2xx_batch_answer_leaves_its_debits_unknown(
    service, garbled: dict[str, Any]
) -> None:
    # One exchange at a time: while tx-0's debit holds it, tx-1's and tx-2's debits wait, and
    # leave together as one `POST /batch` when it is let go (participant_batching.py).
    participant = HttpParticipant({ACCOUNTS: service.url}, max_in_flight=1)
    orchestrator = build(participant, attempt_timeout=5.0)
    release = asyncio.Event()
    service("debit").answer({"hold": release, **ok()}, ok())
    service("credit").answer(ok())
    applied = {"status_code": 200, "body": {"status": "applied"}, "replayed": False}
    service("batch").answer(garbled, {"status": 200, "each": applied})
    try:
        first = asyncio.create_task(orchestrator.run(TRANSFER.name, PARAMS, saga_id="tx-0"))
        await until(lambda: service.calls == [("debit", "tx-0")])
        others = [
            asyncio.create_task(orchestrator.run(TRANSFER.name, PARAMS, saga_id=f"tx-{i}"))
            for i in (1, 2)
        ]
        await until(lambda: len(participant._lanes[ACCOUNTS].queued) == 2)
        release.set()
        states = [s for _, s in await asyncio.gather(first, *others)]
    finally:
        await participant.close()
    assert [s.status for s in states] == [SagaStatus.COMPLETED] * 3
    assert service("batch").calls, "no batch was sent: the test proved nothing"
    assert service.calls[1:3] == [("debit", "tx-1"), ("debit", "tx-2")]  # the garbled batch
    for tx, state in zip(("tx-1", "tx-2"), states[1:], strict=True):
        # Asked again with the same key, before any credit: never taken for an applied debit.
        assert service.calls_of(tx) == ["debit", "debit", "credit"], tx
        assert attempts(state)[0][:2] == ("debit", Outcome.UNKNOWN), tx
    assert service.calls_of("tx-0") == ["debit", "credit"]


async def test_every_attempt_is_in_the_history(orchestrator, service) -> None:
    service("debit").answer(ok())
    service("credit").answer(fail(500, "x"), fail(500, "y"), ok())
    state = await transfer(orchestrator)
    stored = await orchestrator.get(TX)
    recorded = [(e.operation, e.attempt, e.status_code) for e in stored.events if e.attempt]
    assert recorded == [
        ("debit", 1, 200),
        ("credit", 1, 500),
        ("credit", 2, 500),
        ("credit", 3, 200),
    ]
    assert service.calls == [DEBIT, CREDIT, CREDIT, CREDIT]
    assert state.status == SagaStatus.COMPLETED
