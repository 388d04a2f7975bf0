"""The participant's batching, against a real aiohttp server on loopback: a lone call goes alone;
calls made in one turn of the event loop, or that find every exchange busy, leave together as
one `POST /batch`; each item is classified on its own; a batch that fails as a whole leaves
every item unknown (never rejected)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.participant_batching import BatchingParticipant, Queued
from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult


class Accounts:
    """Answers singles and batches; `gate` holds single requests until it is set."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.traceparents: list[tuple[str, str | None]] = []  # (transaction id, batch item's)
        self.gate = asyncio.Event()
        self.gate.set()
        self.batch_answer: Callable[[list[dict[str, Any]]], web.StreamResponse] | None = None
        self.batch_gate = asyncio.Event()  # holds batches until set
        self.batch_gate.set()
        self.url = ""

    @staticmethod
    def answer(item: dict[str, Any]) -> dict[str, Any]:
        if item.get("amount", 0) > 1000:
            return {"status_code": 409, "body": {"error": "insufficient_funds"}, "replayed": False}
        return {"status_code": 200, "body": {"status": "applied"}, "replayed": False}

    async def single(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append((request.match_info["op"], request.headers["transaction-id"]))
        await self.gate.wait()
        a = self.answer(body)
        return web.json_response(a["body"], status=a["status_code"])

    async def batch(self, request: web.Request) -> web.StreamResponse:
        items = (await request.json())["operations"]
        self.seen.append(("batch", [i["transaction_id"] for i in items]))
        self.traceparents.extend((i["transaction_id"], i.get("traceparent")) for i in items)
        await self.batch_gate.wait()
        if self.batch_answer is not None:
            return self.batch_answer(items)
        return web.json_response({"results": [self.answer(i) for i in items]})


@pytest.fixture
async def accounts() -> AsyncIterator[Accounts]:
    svc = Accounts()
    app = web.Application()
    app.router.add_post("/batch", svc.batch)
    app.router.add_post("/{op}", svc.single)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    svc.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield svc
    await runner.cleanup()


@pytest.fixture
async def participant(accounts: Accounts) -> AsyncIterator[HttpParticipant]:
    p = HttpParticipant({"accounts": accounts.url}, max_in_flight=1)
    yield p
    await p.close()


def call(p: BatchingParticipant, tx: str, amount: int = 5, timeout: float = 2.0) -> Any:
    return p.call(
        service="accounts",
        operation="debit",
        transaction_id=tx,
        body={"account_id": "acc-01", "amount": amount},
        timeout=timeout,
    )


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


def queued(p: HttpParticipant) -> int:
    return len(p._lanes["accounts"].queued)


async def pile_up(
    accounts: Accounts, p: HttpParticipant, amounts: list[int], timeout: float = 2.0
) -> list[CallResult]:
    """One call holds the only exchange; the others queue behind it; then it is let go."""
    accounts.gate.clear()
    first = asyncio.create_task(call(p, "t-0"))
    await until(lambda: bool(accounts.seen))  # the first request is held by the server
    rest = [
        asyncio.create_task(call(p, f"t-{i}", a, timeout)) for i, a in enumerate(amounts, start=1)
    ]
    await until(lambda: queued(p) == len(amounts))
    accounts.gate.set()
    return [await first, *[await t for t in rest]]


async def test_a_lone_call_goes_alone(accounts, participant) -> None:
    result = await call(participant, "t-1")
    assert result.outcome is Outcome.SUCCEEDED
    assert accounts.seen == [("debit", "t-1")]


async def test_calls_that_pile_up_leave_as_one_batch_classified_item_by_item(
    accounts, participant
) -> None:
    results = await pile_up(accounts, participant, [5, 5000, 7])
    assert accounts.seen == [("debit", "t-0"), ("batch", ["t-1", "t-2", "t-3"])]
    assert [r.outcome for r in results] == [
        Outcome.SUCCEEDED,
        Outcome.SUCCEEDED,
        Outcome.REJECTED,
        Outcome.SUCCEEDED,
    ]
    assert results[2].error == "insufficient_funds"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": "storage_unavailable"}),
        (422, {"error": "invalid_request"}),  # a 4xx for the batch is no item's business answer
        (200, {"results": []}),  # a result missing
        (200, {"nonsense": True}),
    ],
)
async def test_a_batch_that_fails_as_a_whole_leaves_every_item_unknown(
    accounts, participant, status, body
) -> None:
    accounts.batch_answer = lambda _items: web.json_response(body, status=status)
    results = await pile_up(accounts, participant, [5, 5000])
    assert results[0].outcome is Outcome.SUCCEEDED  # the single one
    assert [r.outcome for r in results[1:]] == [Outcome.UNKNOWN, Outcome.UNKNOWN]
    assert all(r.error.startswith("batch: ") for r in results[1:])


async def test_a_batch_timeout_leaves_every_item_unknown(accounts, participant) -> None:
    accounts.batch_gate.clear()  # the batch is never answered in time
    results = await pile_up(accounts, participant, [5, 7], timeout=0.2)
    accounts.batch_gate.set()
    assert results[0].outcome is Outcome.SUCCEEDED
    assert [(r.outcome, r.error) for r in results[1:]] == [(Outcome.UNKNOWN, "timeout")] * 2


async def test_batching_off_sends_every_call_alone(accounts) -> None:
    p = HttpParticipant({"accounts": accounts.url}, batching=False)
    try:
        results = await asyncio.gather(*(call(p, f"t-{i}") for i in range(5)))
    finally:
        await p.close()
    assert all(r.outcome is Outcome.SUCCEEDED for r in results)
    assert sorted(accounts.seen) == [("debit", f"t-{i}") for i in range(5)]
    assert json.dumps(accounts.seen).count("batch") == 0


async def test_calls_made_in_one_turn_of_the_loop_leave_as_one_batch(accounts) -> None:
    # Every exchange is free: the first call waits one turn, and the others made in that turn
    # leave with it (the sagas that one group commit wakes all call in the same turn).
    p = HttpParticipant({"accounts": accounts.url}, max_in_flight=4)
    try:
        results = await asyncio.gather(*(call(p, f"t-{i}", a) for i, a in enumerate([5, 5000, 7])))
    finally:
        await p.close()
    assert accounts.seen == [("batch", ["t-0", "t-1", "t-2"])]
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.REJECTED, Outcome.SUCCEEDED]


async def test_a_call_cancelled_while_it_waits_for_company_does_not_strand_the_others(
    accounts, participant
) -> None:
    first = asyncio.create_task(call(participant, "t-0"))
    others = [asyncio.create_task(call(participant, f"t-{i}")) for i in (1, 2)]
    await asyncio.sleep(0)  # the first is waiting its turn; the others have joined it
    assert queued(participant) == 2
    first.cancel()
    results = await asyncio.wait_for(asyncio.gather(*others), timeout=5)  # not stranded
    assert first.cancelled()
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert accounts.seen == [("batch", ["t-1", "t-2"])]  # the cancelled call was never sent


async def test_each_batched_item_carries_its_own_callers_trace_context(accounts) -> None:
    # Each call runs under its saga step's span; one batch carries them all, so each item must
    # say whose it is (the single request says it in its `traceparent` header).
    def under_span(tx: str, span_id: int | None) -> Any:
        async def go() -> CallResult:
            if span_id is not None:
                parent = SpanContext(0xFEED, span_id, is_remote=False, trace_flags=TraceFlags(1))
                otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
            return await call(p, tx)

        return go()

    p = HttpParticipant({"accounts": accounts.url}, max_in_flight=4)
    try:
        await asyncio.gather(
            under_span("t-0", 0xA1), under_span("t-1", None), under_span("t-2", 0xB2)
        )
    finally:
        await p.close()
    assert accounts.seen == [("batch", ["t-0", "t-1", "t-2"])]
    assert accounts.traceparents == [
        ("t-0", f"00-{0xFEED:032x}-{0xA1:016x}-01"),
        ("t-1", None),  # no span: nothing sent, as no header is for a single request
        ("t-2", f"00-{0xFEED:032x}-{0xB2:016x}-01"),
    ]


class InProcessBatching(BatchingParticipant):
    """The batching rules without HTTP: a single call succeeds; a batch does `batch()`."""

    def __init__(self, batch: Callable[[list[Queued]], Awaitable[list[CallResult]]]) -> None:
        super().__init__({"accounts": "in-process"}, batching=True, max_in_flight=1)
        self.batch = batch
        self.batches: list[list[str]] = []

    async def _single(self, *args: Any) -> CallResult:
        return CallResult(Outcome.SUCCEEDED, 200, None, {"status": "applied"})

    async def _post_batch(self, service: str, items: list[Queued]) -> list[CallResult]:
        self.batches.append([i.transaction_id for i in items])
        return await self.batch(items)


def three_calls(p: BatchingParticipant) -> list[asyncio.Task[CallResult]]:
    """Three calls made in one turn of the loop: they leave as one batch."""
    return [asyncio.create_task(call(p, f"t-{i}")) for i in range(3)]


async def test_a_batch_that_breaks_unexpectedly_leaves_every_item_unknown_naming_the_error() -> (
    None
):
    async def broken(_items: list[Queued]) -> list[CallResult]:
        raise RuntimeError("a bug, not a remote failure")

    p = InProcessBatching(broken)
    results = await asyncio.gather(*three_calls(p))
    assert p.batches == [["t-0", "t-1", "t-2"]]
    assert results == [CallResult(Outcome.UNKNOWN, None, "transport: RuntimeError")] * 3


async def test_closing_the_participant_cancels_the_callers_of_a_batch_in_flight() -> None:
    sent, never = asyncio.Event(), asyncio.Event()

    async def unanswered(_items: list[Queued]) -> list[CallResult]:
        sent.set()
        await never.wait()
        raise AssertionError("not reached")

    p = InProcessBatching(unanswered)
    callers = three_calls(p)
    await sent.wait()
    await p.close()  # shutdown: the batch in flight is stopped
    done, pending = await asyncio.wait(callers, timeout=5)  # they stop waiting, not hang
    assert (len(done), pending) == (3, set())
    assert all(c.cancelled() for c in callers)
