"""The participant's batching, against a real aiohttp server on loopback: a lone call goes alone;
calls made in one turn of the event loop, or that find every exchange busy, leave together as
one `POST /batch`; each item is classified on its own; a batch that fails as a whole leaves
every item unknown (never rejected)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.participant_batching import BatchingParticipant, Queued
from repository_after.config import Settings
from repository_after.domain.accounts import MAX_BATCH
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
    sent, never, stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def unanswered(_items: list[Queued]) -> list[CallResult]:
        sent.set()
        try:
            await never.wait()
        finally:
            stopped.set()
        raise AssertionError("not reached")

    p = InProcessBatching(unanswered)
    callers = three_calls(p)
    await sent.wait()
    await p.close()  # shutdown: the batch in flight is stopped
    assert stopped.is_set()  # ...before close returns (the client it uses is closed next)
    done, pending = await asyncio.wait(callers, timeout=5)  # they stop waiting, not hang
    assert (len(done), pending) == (3, set())
    assert all(c.cancelled() for c in callers)


class Held(httpx.AsyncBaseTransport):
    """Holds every exchange (a single request or a batch) until the test ends it, oldest
    first: `answered`, `failed` (no answer: a connection error) or `broken` (an error nobody
    expected); any other ending is answered."""

    def __init__(self) -> None:
        self.held: list[tuple[list[str], asyncio.Future[str]]] = []  # (its calls' ids, ending)
        self.most = 0  # the most exchanges ever under way at once

    def ids(self) -> set[str]:
        return {tx for ids, _ in self.held for tx in ids}

    def end(self, how: str) -> list[str]:
        ending = [e for e in self.held if not e[1].done()]
        assert ending, "calls wait, and no exchange is under way: they are stranded"
        ids, future = ending[0]
        future.set_result(how)
        return ids

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/batch":
            ids = [i["transaction_id"] for i in orjson.loads(request.content)["operations"]]
        else:
            ids = [request.headers["transaction-id"]]
        entry: tuple[list[str], asyncio.Future[str]] = (
            ids,
            asyncio.get_running_loop().create_future(),
        )
        self.held.append(entry)
        self.most = max(self.most, len(self.held))
        try:
            how = await entry[1]
        finally:
            self.held.remove(entry)
        if how == "failed":
            raise httpx.ConnectError("refused", request=request)
        if how == "broken":
            raise RuntimeError("a bug, not a remote failure")
        if request.url.path == "/batch":
            ok = {"status_code": 200, "body": {"status": "applied"}, "replayed": False}
            return httpx.Response(200, json={"results": [ok] * len(ids)})
        return httpx.Response(200, json={"status": "applied"})


class HeldCalls:
    """An `HttpParticipant` on a `Held` transport, and the calls made through it, by id."""

    def __init__(self, max_in_flight: int | None) -> None:
        self.transport = Held()
        limit = {} if max_in_flight is None else {"max_in_flight": max_in_flight}
        self.p = HttpParticipant(
            {"accounts": "http://accounts.test"}, transport=self.transport, **limit
        )
        self.calls: dict[str, asyncio.Task[CallResult]] = {}

    def call(self, *txs: str) -> None:
        self.calls |= {tx: asyncio.create_task(call(self.p, tx, timeout=30)) for tx in txs}

    def under_way(self) -> int:
        return len(self.transport.held)

    async def settled(self) -> None:
        """Until every call still waiting is at the transport or queued for it, and every
        exchange that was ended has left the transport."""
        async with asyncio.timeout(5):
            while True:
                waiting = {tx for tx, t in self.calls.items() if not t.done()}
                queued = {q.transaction_id for q in self.p._lanes["accounts"].queued}
                ended = any(f.done() for _, f in self.transport.held)  # not yet gone
                if waiting <= self.transport.ids() | queued and not ended:
                    return
                await asyncio.sleep(0.001)

    async def one_by_one(self, *txs: str) -> None:
        """Each call made once the one before is under way or queued."""
        for tx in txs:
            self.call(tx)
            await self.settled()

    async def end_all(self, how: str) -> None:
        """Ends the exchanges one at a time, oldest first, until no call waits."""
        while any(not t.done() for t in self.calls.values()):
            await self.settled()
            ids = self.transport.end(how)
            if how == "cancelled":  # its callers give up (a batch goes on, and is answered)
                for tx in ids:
                    self.calls[tx].cancel()
            await self.settled()


@pytest.mark.parametrize("max_in_flight", [1, 2, None], ids=["1", "2", "default"])
async def test_at_most_max_in_flight_exchanges_are_under_way_at_once(
    max_in_flight: int | None,
) -> None:
    held = HeldCalls(max_in_flight)
    # Made without a limit, the participant takes the one the settings default to.
    limit = max_in_flight or Settings.model_fields["participant_max_in_flight"].default
    try:
        # A crowd in one turn of the loop: `limit` full batches leave, one call waits.
        held.call(*(f"c-{i}" for i in range(MAX_BATCH * limit + 1)))
        await held.settled()
        assert (held.under_way(), queued(held.p)) == (limit, 1)
        await held.end_all("answered")  # as each ends, whoever waits leaves
        # One by one, each call finds an exchange free and goes alone, until none is free.
        await held.one_by_one(*(f"s-{i}" for i in range(limit + 1)))
        assert (held.under_way(), queued(held.p)) == (limit, 1)
        await held.end_all("answered")
        results = [await t for t in held.calls.values()]
    finally:
        await held.p.close()
    assert held.transport.most == limit
    assert all(r.outcome is Outcome.SUCCEEDED for r in results)
    assert sorted(held.calls) == sorted(
        [f"c-{i}" for i in range(MAX_BATCH * limit + 1)] + [f"s-{i}" for i in range(limit + 1)]
    )


@pytest.mark.parametrize("how", ["answered", "failed", "broken", "cancelled"])
async def test_however_an_exchange_ends_it_gives_its_place_back(how: str) -> None:
    # Batches and single exchanges end `how`; then two calls go at once again, and a third
    # waits: no place was lost (later calls starved) nor made up (more than two at once).
    held = HeldCalls(2)
    try:
        held.call(*(f"c-{i}" for i in range(MAX_BATCH * 2 + 1)))  # two batches, then a third
        await held.end_all(how)
        await held.one_by_one("s-0", "s-1")  # two single exchanges
        await held.end_all(how)
        await held.one_by_one("t-0", "t-1", "t-2")
        assert (held.under_way(), queued(held.p)) == (2, 1)
        await held.end_all("answered")
        later = [await held.calls[f"t-{i}"] for i in range(3)]
    finally:
        await held.p.close()
    assert held.transport.most == 2
    assert [r.outcome for r in later] == [Outcome.SUCCEEDED] * 3
    ended = {tx: t for tx, t in held.calls.items() if not tx.startswith("t-")}
    if how == "cancelled":
        assert all(t.cancelled() for t in ended.values())
        return
    outcomes = {
        tx: (
            type(t.exception()).__name__
            if t.exception()
            else (t.result().outcome, t.result().error)
        )
        for tx, t in ended.items()
    }
    batched = {tx: o for tx, o in outcomes.items() if tx.startswith("c-")}
    single = {tx: o for tx, o in outcomes.items() if tx.startswith("s-")}
    if how == "answered":
        assert set(outcomes.values()) == {(Outcome.SUCCEEDED, None)}
    elif how == "failed":
        assert set(outcomes.values()) == {(Outcome.UNKNOWN, "transport: ConnectError")}
    else:  # broken: a batch's callers learn "unknown"; a single call's caller gets the error
        assert set(batched.values()) == {(Outcome.UNKNOWN, "transport: RuntimeError")}
        assert set(single.values()) == {"RuntimeError"}
    assert (len(batched), len(single)) == (MAX_BATCH * 2 + 1, 2)


async def test_a_participant_keeps_nothing_of_the_batches_that_ended() -> None:
    # `close()` stops the batches in flight; one that ended is let go at once, or a participant
    # that runs for days would hold every batch it ever sent.
    held = HeldCalls(1)
    try:
        held.call("b-0", "b-1", "b-2")  # one turn: one batch
        await held.end_all("answered")
        async with asyncio.timeout(5):
            while held.p._batches:
                await asyncio.sleep(0.001)
        assert all(t.result().outcome is Outcome.SUCCEEDED for t in held.calls.values())
    finally:
        await held.p.close()


async def test_a_lone_call_cancelled_while_it_waits_for_company_leaves_the_lane_open() -> None:
    held = HeldCalls(1)
    try:
        first = asyncio.create_task(call(held.p, "t-0"))
        await asyncio.sleep(0)  # one turn: the first waits its turn for company; none comes
        assert not first.done()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await held.one_by_one("t-1")  # a later call still goes
        assert held.transport.ids() == {"t-1"}
        await held.end_all("answered")
        assert (await held.calls["t-1"]).outcome is Outcome.SUCCEEDED
    finally:
        await held.p.close()
