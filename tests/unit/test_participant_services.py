"""The participant over several services (`SAGABANK_SERVICES`, `bootstrap.build_participant`):
each call goes to its service's URL; a service's token goes to that service alone (singles and
batches), a service without a token gets no `Authorization` at all; a service whose batching
is off gets only single calls, never `POST /batch`. respx stands in for the transport."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import respx

from repository_after.adapters.http_participant import Endpoint, HttpParticipant
from repository_after.bootstrap import build_participant
from repository_after.config import ConfigurationError, ProcessRole, Settings
from repository_after.domain.saga import Outcome
from repository_after.domain.saga_definition import SagaDefinition, Step, StepKind
from repository_after.service_layer.saga_ports import CallResult

A, B, C = "http://a.test", "http://b.test:8100/api", "http://c.test"
TOKEN_A, TOKEN_B = "t0ken-of-a", "t0ken-of-b"
ACCOUNTS_URL = "http://accounts.test"


def step(name: str, service: str, kind: StepKind = StepKind.RETRIABLE) -> Step:
    return Step(
        name=name,
        service=service,
        action=name,
        running_status=name,
        request={"sku": "sku"},
        kind=kind,
    )


#: A saga over the three services (the participant is built for the whole map).
THREE = {"three": SagaDefinition(name="three", steps=(step("x", "a"), step("y", "b")))}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    # Every request must match a route; routes a test leaves unused (a /batch) are fine.
    with respx.mock(using="httpx", assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def answer_batch(request: httpx.Request) -> httpx.Response:
    items = orjson.loads(request.content)["operations"]
    results = [{"status_code": 200, "body": {"status": "ok"}, "replayed": False} for _ in items]
    return httpx.Response(200, json={"results": results})


def routes(mock: respx.MockRouter, base: str) -> tuple[respx.Route, respx.Route]:
    single = mock.post(f"{base}/op").respond(200, json={"status": "ok"})
    batch = mock.post(f"{base}/batch").mock(side_effect=answer_batch)
    return single, batch


def call(p: HttpParticipant, service: str, tx: str) -> Any:
    return p.call(service=service, operation="op", transaction_id=tx, body={"n": 1}, timeout=2)


async def alone_then_together(p: HttpParticipant, service: str) -> list[CallResult]:
    """One call alone (a single POST), then three in one turn (a batch, when it batches)."""
    alone = await call(p, service, f"{service}-0")
    together = await asyncio.gather(*(call(p, service, f"{service}-{i}") for i in (1, 2, 3)))
    return [alone, *together]


def three_services(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "role": ProcessRole.ORCHESTRATOR,
        "accounts_url": ACCOUNTS_URL,
        "service_token": None,
        "services": {
            "a": {"url": A, "token": TOKEN_A},
            "b": {"url": B, "token": TOKEN_B},
            "c": {"url": C},
        },
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def authorizations(*route_list: respx.Route) -> set[str | None]:
    return {c.request.headers.get("authorization") for r in route_list for c in r.calls}


async def test_each_service_s_token_goes_to_that_service_alone_on_singles_and_batches(
    mock: respx.MockRouter,
) -> None:
    a, b, c = routes(mock, A), routes(mock, B), routes(mock, C)
    participant = build_participant(three_services(), THREE)
    try:
        results = [r for s in ("a", "b", "c") for r in await alone_then_together(participant, s)]
    finally:
        await participant.close()
    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}
    # Each service was reached both ways, so both ways are checked.
    assert [(single.call_count, batch.call_count) for single, batch in (a, b, c)] == [(1, 1)] * 3
    assert authorizations(*a) == {f"Bearer {TOKEN_A}"}
    assert authorizations(*b) == {f"Bearer {TOKEN_B}"}
    # A service without a token: no Authorization header at all, not another's, not an empty one.
    assert authorizations(*c) == {None}


async def test_a_listed_service_without_a_token_never_gets_the_service_token(
    mock: respx.MockRouter,
) -> None:
    """The service token opens the account service's money routes: it goes to that service and
    to the participants its process hosts, never to a service listed with its own URL that
    takes no token ("token": null), neither alone nor in a batch."""
    a, c = routes(mock, A), routes(mock, C)
    accounts = routes(mock, ACCOUNTS_URL)
    hosted = routes(mock, f"{ACCOUNTS_URL}/inventory")
    settings = three_services(
        service_token="gl0bal",
        services={
            "a": {"url": A, "token": TOKEN_A},
            "b": {"url": B, "token": TOKEN_B},
            "c": {"url": C, "token": None},
        },
    )
    participant = build_participant(settings, THREE)
    try:
        results = [
            r
            for service in ("a", "c", "accounts", "inventory")
            for r in await alone_then_together(participant, service)
        ]
    finally:
        await participant.close()
    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}
    # Every service was reached both ways (a single POST and a batch), so both ways are checked.
    assert [(one.call_count, batch.call_count) for one, batch in (c, accounts, hosted)] == [
        (1, 1)
    ] * 3
    assert authorizations(*c) == {None}
    assert authorizations(*a) == {f"Bearer {TOKEN_A}"}
    assert authorizations(*accounts) == {"Bearer gl0bal"}
    assert authorizations(*hosted) == {"Bearer gl0bal"}


async def test_a_listed_service_that_does_not_say_its_token_is_refused_with_a_service_token() -> (
    None
):
    settings = three_services(
        service_token="gl0bal-s3cret",
        services={"a": {"url": A, "token": TOKEN_A}, "b": {"url": B}, "c": {"url": C}},
    )
    with pytest.raises(ConfigurationError) as refused:
        build_participant(settings, THREE)
    message = str(refused.value)
    assert message.startswith("SAGABANK_SERVICES: 'b', 'c' have no token")
    assert "SAGABANK_SERVICE_TOKEN" in message
    assert '"token": null' in message
    for secret in ("gl0bal-s3cret", TOKEN_A, A, B, C):
        assert secret not in message
    # Without a service token there is nothing to withhold: the same map starts.
    await build_participant(three_services(services=settings.services), THREE).close()


async def test_a_service_whose_batching_is_off_gets_only_single_calls(
    mock: respx.MockRouter,
) -> None:
    off_single, off_batch = routes(mock, A)
    _, on_batch = routes(mock, C)
    settings = three_services(
        participant_max_in_flight=1,
        services={"a": {"url": A, "batching": False}, "c": {"url": C}},
    )
    participant = build_participant(settings, {})
    try:
        off = await alone_then_together(participant, "a")
        on = await alone_then_together(participant, "c")
    finally:
        await participant.close()
    assert {r.outcome for r in (*off, *on)} == {Outcome.SUCCEEDED}
    assert (off_single.call_count, off_batch.call_count) == (4, 0)
    # The same load on a batching service does leave as a batch.
    assert on_batch.call_count >= 1
    sent = [orjson.loads(c.request.content) for c in off_single.calls]
    assert all(body == {"n": 1} for body in sent)
    txs = sorted(c.request.headers["transaction-id"] for c in off_single.calls)
    assert txs == ["a-0", "a-1", "a-2", "a-3"]


async def test_each_call_goes_to_its_own_service_s_url(mock: respx.MockRouter) -> None:
    a_single, _ = routes(mock, A)
    b_single, _ = routes(mock, B)  # B is mounted under a path
    participant = build_participant(three_services(participant_max_in_flight=0), THREE)
    try:
        await call(participant, "b", "b-1")
        await call(participant, "a", "a-1")
        await call(participant, "b", "b-2")
    finally:
        await participant.close()
    assert [c.request.headers["transaction-id"] for c in a_single.calls] == ["a-1"]
    assert [c.request.headers["transaction-id"] for c in b_single.calls] == ["b-1", "b-2"]
    assert {str(c.request.url) for c in b_single.calls} == {f"{B}/op"}


async def test_headers_given_to_every_service_go_with_each_service_s_own_which_win(
    mock: respx.MockRouter,
) -> None:
    a, c = routes(mock, A), routes(mock, C)
    participant = HttpParticipant(
        {"a": Endpoint(A, headers={"authorization": "Bearer x"}), "c": C},
        batching=False,
        headers={"x-fleet": "f1", "authorization": "Bearer fleet"},
    )
    try:
        await call(participant, "a", "a-1")
        await call(participant, "c", "c-1")
    finally:
        await participant.close()
    sent_a, sent_c = a[0].calls.last.request.headers, c[0].calls.last.request.headers
    assert (sent_a.get("authorization"), sent_a.get("x-fleet")) == ("Bearer x", "f1")
    assert (sent_c.get("authorization"), sent_c.get("x-fleet")) == ("Bearer fleet", "f1")


def test_an_endpoint_s_repr_shows_no_credential() -> None:
    endpoint = Endpoint(A, headers={"authorization": f"Bearer {TOKEN_A}"})
    assert TOKEN_A not in repr(endpoint)
    assert A in repr(endpoint)


def test_a_bad_url_is_refused_naming_the_service_without_the_url() -> None:
    with pytest.raises(ValueError, match="service 'a': not an http") as refused:
        HttpParticipant({"a": Endpoint("ftp://ops:hunter2@a.test")})
    assert "hunter2" not in str(refused.value)
