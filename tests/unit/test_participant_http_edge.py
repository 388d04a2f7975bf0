"""The participant's HTTP edge with respx (a mock of httpx): how each answer or failure is
classified, what a request carries, and how a batch that fails as a whole is read. What only
a real socket can show (late answers, connection reuse, 1xx, TLS) is in test_http_transport.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import respx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult

URL = "http://accounts.test"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    # "httpx": respx stands in for whichever transport is under the client.
    with respx.mock(using="httpx", assert_all_mocked=True) as router:
        yield router


async def _call(tx: str = "tx-1", *, batching: bool = False, amount: int = 5) -> CallResult:
    participant = HttpParticipant({"accounts": URL}, batching=batching)
    try:
        return await participant.call(
            service="accounts",
            operation="debit",
            transaction_id=tx,
            body={"account_id": "acc-01", "amount": amount},
            timeout=2,
        )
    finally:
        await participant.close()


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (200, b'{"status":"applied"}', (Outcome.SUCCEEDED, None)),
        (201, b'{"status":"applied"}', (Outcome.SUCCEEDED, None)),
        (200, b"<html>", (Outcome.UNKNOWN, "unreadable_body")),
        (200, b"[1, 2]", (Outcome.UNKNOWN, "unreadable_body")),  # not an object
        (200, b"NaN", (Outcome.UNKNOWN, "unreadable_body")),
        (200, b"", (Outcome.UNKNOWN, "unreadable_body")),
        (409, b'{"error":"insufficient_funds"}', (Outcome.REJECTED, "insufficient_funds")),
        (400, b'{"error":"invalid_request"}', (Outcome.REJECTED, "invalid_request")),  # 4xx's edge
        (404, b'{"error":"account_not_found"}', (Outcome.REJECTED, "account_not_found")),
        (422, b"<html>", (Outcome.REJECTED, "http_422")),
        (408, b'{"error":"timeout"}', (Outcome.UNKNOWN, "timeout")),
        (429, b'{"error":"slow_down"}', (Outcome.UNKNOWN, "slow_down")),
        (500, b'{"error":"boom"}', (Outcome.UNKNOWN, "boom")),
        (503, b"", (Outcome.UNKNOWN, "http_503")),
        (307, b"", (Outcome.UNKNOWN, "http_307")),  # a redirect is not an answer
        (300, b'{"status":"applied"}', (Outcome.UNKNOWN, "http_300")),  # 2xx's edge: not one
    ],
)
async def test_an_answer_is_classified_by_the_outcome_rules(
    mock: respx.MockRouter, status: int, content: bytes, expected: tuple[Outcome, str | None]
) -> None:
    mock.post(f"{URL}/debit").respond(status, content=content)
    result = await _call()
    assert (result.outcome, result.error) == expected
    assert result.status_code == status
    # The answer's JSON object goes with every outcome (a refusal's too), as it was sent.
    assert result.body == (orjson.loads(content) if content.startswith(b"{") else None)


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ConnectTimeout, "timeout"),
        (httpx.ReadTimeout, "timeout"),
        (httpx.PoolTimeout, "timeout"),
        (httpx.ConnectError, "transport: ConnectError"),
        (httpx.ReadError, "transport: ReadError"),
        (httpx.RemoteProtocolError, "transport: RemoteProtocolError"),
        (ConnectionResetError, "transport: ConnectionResetError"),
    ],
)
async def test_no_answer_is_an_unknown_outcome_never_an_exception(
    mock: respx.MockRouter, failure: type[Exception], error: str
) -> None:
    mock.post(f"{URL}/debit").mock(side_effect=failure)
    result = await _call()
    assert (result.outcome, result.status_code, result.error) == (Outcome.UNKNOWN, None, error)


async def test_the_request_carries_the_key_the_json_body_and_no_traceparent_without_a_trace(
    mock: respx.MockRouter,
) -> None:
    route = mock.post(f"{URL}/debit").respond(200, json={"status": "applied"})
    await _call("tx-7")
    request = route.calls.last.request
    assert request.headers["transaction-id"] == "tx-7"
    assert request.headers["content-type"] == "application/json"
    assert "traceparent" not in request.headers
    assert orjson.loads(request.content) == {"account_id": "acc-01", "amount": 5}


def _under_span(span_id: int) -> object:
    parent = SpanContext(0xFEED, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))


async def test_a_single_request_carries_its_callers_traceparent(mock: respx.MockRouter) -> None:
    route = mock.post(f"{URL}/debit").respond(200, json={"status": "applied"})
    token = _under_span(0xA1)
    try:
        await _call()
    finally:
        otel_context.detach(token)  # type: ignore[arg-type]
    assert route.calls.last.request.headers["traceparent"] == f"00-{0xFEED:032x}-{0xA1:016x}-01"


async def _batch_of_three(amounts: tuple[int, ...] = (5, 5000, 7)) -> list[CallResult]:
    """Three calls made in one turn of the loop: they leave as one `POST /batch`."""
    participant = HttpParticipant({"accounts": URL}, max_in_flight=4)

    async def one(i: int, amount: int) -> CallResult:
        if i != 1:  # t-1 calls without a trace
            _under_span(0xA0 + i)  # this task's own context: nothing to detach
        return await participant.call(
            service="accounts",
            operation="debit",
            transaction_id=f"t-{i}",
            body={"account_id": "acc-01", "amount": amount},
            timeout=2,
        )

    try:
        return list(await asyncio.gather(*(one(i, a) for i, a in enumerate(amounts))))
    finally:
        await participant.close()


def _item_answer(item: dict[str, Any]) -> dict[str, Any]:
    if item["amount"] > 1000:
        return {"status_code": 409, "body": {"error": "insufficient_funds"}, "replayed": False}
    return {"status_code": 200, "body": {"status": "applied"}, "replayed": False}


async def test_a_batch_carries_each_items_key_and_trace_and_is_classified_item_by_item(
    mock: respx.MockRouter,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        items = orjson.loads(request.content)["operations"]
        return httpx.Response(200, json={"results": [_item_answer(i) for i in items]})

    route = mock.post(f"{URL}/batch").mock(side_effect=answer)
    results = await _batch_of_three()
    request = route.calls.last.request
    assert route.call_count == 1
    assert "transaction-id" not in request.headers  # each item says whose it is
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content)["operations"] == [
        {
            "operation": "debit",
            "transaction_id": "t-0",
            "account_id": "acc-01",
            "amount": 5,
            "traceparent": f"00-{0xFEED:032x}-{0xA0:016x}-01",
        },
        {"operation": "debit", "transaction_id": "t-1", "account_id": "acc-01", "amount": 5000},
        {
            "operation": "debit",
            "transaction_id": "t-2",
            "account_id": "acc-01",
            "amount": 7,
            "traceparent": f"00-{0xFEED:032x}-{0xA2:016x}-01",
        },
    ]
    assert [(r.outcome, r.error) for r in results] == [
        (Outcome.SUCCEEDED, None),
        (Outcome.REJECTED, "insufficient_funds"),
        (Outcome.SUCCEEDED, None),
    ]


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (500, b'{"error":"storage_unavailable"}', "batch: storage_unavailable"),
        (422, b'{"error":"invalid_request"}', "batch: invalid_request"),  # no item's answer
        (503, b"<html>", "batch: http_503"),
        (200, b'{"results": []}', "batch: unreadable_body"),  # a result missing
        (200, b'{"results": [{}, {}, {}]}', "batch: unreadable_body"),  # results without fields
        (200, b'{"nonsense": true}', "batch: unreadable_body"),
        (200, b"<html>", "batch: unreadable_body"),
        # A batch is answered by a 200 only; another 2xx carries no item's outcome.
        (
            201,
            b'{"results": [%s]}' % b",".join([b'{"status_code":200,"body":{}}'] * 3),
            "batch: http_201",
        ),
        (204, b"", "batch: unreadable_body"),  # as a 2xx alone: no body to read
        # Only a 200 is a batch's answer: results in any other answer are no item's outcome.
        (
            500,
            b'{"results": [%s]}' % b",".join([b'{"status_code":200,"body":{}}'] * 3),
            "batch: http_500",
        ),
    ],
)
async def test_a_batch_that_fails_as_a_whole_leaves_every_item_unknown(
    mock: respx.MockRouter, status: int, content: bytes, error: str
) -> None:
    mock.post(f"{URL}/batch").respond(status, content=content)
    results = await _batch_of_three()
    assert [(r.outcome, r.status_code, r.error) for r in results] == [
        (Outcome.UNKNOWN, status, error)
    ] * 3


@pytest.mark.parametrize(
    ("failure", "error"),
    [(httpx.ReadTimeout, "timeout"), (httpx.ConnectError, "transport: ConnectError")],
)
async def test_a_batch_without_an_answer_leaves_every_item_unknown(
    mock: respx.MockRouter, failure: type[Exception], error: str
) -> None:
    mock.post(f"{URL}/batch").mock(side_effect=failure)
    results = await _batch_of_three()
    assert [(r.outcome, r.error) for r in results] == [(Outcome.UNKNOWN, error)] * 3


@pytest.mark.parametrize(
    "body",
    ["<html><h1>502 Bad Gateway</h1></html>", None, [1, 2], "", 0],
    ids=["html", "null", "list", "empty", "number"],
)
async def test_a_batch_item_that_is_a_2xx_without_a_readable_body_is_unknown(
    mock: respx.MockRouter, body: object
) -> None:
    # The batch itself reads fine; one item's answer is a 2xx whose body is not a JSON object
    # (a proxy's page relayed as the item's body). Taking it for success would count a debit
    # as applied that nobody confirmed; only the item's own retry, with its key, can tell.
    def answer(request: httpx.Request) -> httpx.Response:
        items = orjson.loads(request.content)["operations"]
        results = [_item_answer(i) for i in items]
        results[2] = {"status_code": 200, "body": body, "replayed": False}
        return httpx.Response(200, json={"results": results})

    mock.post(f"{URL}/batch").mock(side_effect=answer)
    results = await _batch_of_three()
    assert [(r.outcome, r.status_code, r.error) for r in results] == [
        (Outcome.SUCCEEDED, 200, None),
        (Outcome.REJECTED, 409, "insufficient_funds"),
        (Outcome.UNKNOWN, 200, "unreadable_body"),
    ]


async def test_the_service_credential_goes_with_every_single_and_batch_request(
    mock: respx.MockRouter,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        items = orjson.loads(request.content)["operations"]
        return httpx.Response(200, json={"results": [_item_answer(i) for i in items]})

    single = mock.post(f"{URL}/debit").respond(200, json={"status": "applied"})
    batch = mock.post(f"{URL}/batch").mock(side_effect=answer)
    participant = HttpParticipant(
        {"accounts": URL}, max_in_flight=4, headers={"authorization": "Bearer s3cret"}
    )

    def debit(tx: str) -> Any:
        body = {"account_id": "acc-01", "amount": 5}
        return participant.call(
            service="accounts", operation="debit", transaction_id=tx, body=body, timeout=2
        )

    try:
        alone = await debit("t-0")  # alone: a single POST
        together = await asyncio.gather(*(debit(f"t-{i}") for i in (1, 2)))  # one POST /batch
    finally:
        await participant.close()
    assert [r.outcome for r in (alone, *together)] == [Outcome.SUCCEEDED] * 3
    assert (single.call_count, batch.call_count) == (1, 1)
    sent = [route.calls.last.request for route in (single, batch)]
    assert [r.headers.get("authorization") for r in sent] == ["Bearer s3cret"] * 2


@pytest.mark.parametrize(
    ("base", "path"),
    [
        (URL, "/debit"),
        (f"{URL}/", "/debit"),  # a trailing slash: no empty path segment
        (f"{URL}/FX", "/FX/debit"),  # a service mounted under a path
        (f"{URL}/FX/", "/FX/debit"),
    ],
)
async def test_the_operation_is_posted_under_the_services_url_as_configured(
    mock: respx.MockRouter, base: str, path: str
) -> None:
    route = mock.post(f"{URL}{path}").respond(200, json={"status": "applied"})
    participant = HttpParticipant({"accounts": base}, batching=False)
    try:
        result = await participant.call(
            service="accounts", operation="debit", transaction_id="t-1", body={}, timeout=2
        )
    finally:
        await participant.close()
    assert result.outcome is Outcome.SUCCEEDED
    assert route.calls.last.request.url.raw_path == path.encode()


@pytest.mark.parametrize("batching", [False, True], ids=["single", "batch"])
async def test_every_exchange_hands_the_transport_the_callers_timeout(
    mock: respx.MockRouter, batching: bool
) -> None:
    # httpx gives the transport its deadline for each phase (connect, write, read, waiting for
    # a free connection): the caller's timeout, never httpx's default of 5 s nor none at all.
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/batch":
            items = orjson.loads(request.content)["operations"]
            return httpx.Response(200, json={"results": [_item_answer(i) for i in items]})
        return httpx.Response(200, json={"status": "applied"})

    route = mock.post(url__startswith=URL).mock(side_effect=answer)
    participant = HttpParticipant({"accounts": URL}, max_in_flight=4)

    def debit(tx: str, timeout: float) -> Any:
        body = {"account_id": "acc-01", "amount": 5}
        return participant.call(
            service="accounts", operation="debit", transaction_id=tx, body=body, timeout=timeout
        )

    try:
        if batching:  # a batch's deadline is its most pressed item's
            results = await asyncio.gather(debit("t-0", 9.0), debit("t-1", 7.5), debit("t-2", 8))
        else:
            results = [await debit("t-0", 7.5)]
    finally:
        await participant.close()
    assert all(r.outcome is Outcome.SUCCEEDED for r in results)
    assert route.calls.last.request.url.path == ("/batch" if batching else "/debit")
    timeout = route.calls.last.request.extensions["timeout"]
    assert timeout == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}


async def test_a_participant_closed_before_its_first_call_closes_cleanly() -> None:
    participant = HttpParticipant({"accounts": URL})
    await participant.close()  # no client was ever made: nothing to close, nothing raised
