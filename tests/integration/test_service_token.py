"""The service credential (`SAGABANK_SERVICE_TOKEN`): with one configured, only its holder moves
money. The five money-moving routes refuse a request without it, with a wrong one or with the
ADMIN token (401 `unauthorized`) and record nothing; with it they work; the service token opens
no admin route; with none configured they stay open. The orchestrator's participant sends it
on single calls and on `/batch` alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.bootstrap import build_participant
from repository_after.config import ProcessRole, Settings
from repository_after.domain.saga import Outcome
from repository_after.domain.sagas import DEFINITIONS
from repository_after.entrypoints.app import create_app
from tests.conftest import accounts_settings, asgi_client
from tests.integration.test_fastapi_routing import _client, _routes

SERVICE, ADMIN = "serv1ce-t0ken", "adm1n-t0ken"
GOOD = {"Authorization": f"Bearer {SERVICE}"}
#: The reads are closed too when a token is configured; the admin token opens them.
READ = {"Authorization": f"Bearer {ADMIN}"}
REFUSED = {
    "no token": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "bare token": {"Authorization": SERVICE},
    "admin token": {"Authorization": f"Bearer {ADMIN}"},
}
#: One request per money-moving route; each would change the books if it were let through.
MOVES: dict[str, dict[str, Any]] = {
    "/debit": {"account_id": "acc-01", "amount": 500},
    "/credit": {"account_id": "acc-02", "amount": 500},
    "/compensate_debit": {"account_id": "acc-01", "amount": 500},
    "/void_credit": {"account_id": "acc-02", "amount": 500},
    "/batch": {
        "operations": [
            {
                "operation": "debit",
                "transaction_id": "moved-b",
                "account_id": "acc-01",
                "amount": 7,
            },
            {
                "operation": "credit",
                "transaction_id": "moved-c",
                "account_id": "acc-02",
                "amount": 9,
            },
        ]
    },
}


def guarded_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "demo_accounts": 2,
        "demo_balance": 10_000,
        "admin_token": ADMIN,
        "service_token": SERVICE,
        **overrides,
    }
    return accounts_settings(tmp_path, **values)


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in asgi_client(guarded_settings(tmp_path)):
        yield client


async def books(client: httpx.AsyncClient) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was: balances, entries, the audit."""
    accounts = (await client.get("/accounts", headers=READ)).json()
    entries = [
        (await client.get(f"/accounts/{a}/entries", headers=READ)).json()
        for a in ("acc-01", "acc-02")
    ]
    return accounts, entries, (await client.get("/audit", headers=READ)).json()


@pytest.mark.parametrize("path", list(MOVES))
@pytest.mark.parametrize("who", list(REFUSED))
async def test_a_money_route_refuses_anyone_without_the_service_token(
    guarded: httpx.AsyncClient, path: str, who: str
) -> None:
    before = await books(guarded)
    headers = {"transaction-id": "moved-1", **REFUSED[who]}
    refused = await guarded.post(path, json=MOVES[path], headers=headers)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "unauthorized"
    assert await books(guarded) == before
    # Nothing was recorded under the id: the holder's call with it is applied, not a replay.
    if path in ("/debit", "/credit"):
        allowed = await guarded.post(path, json=MOVES[path], headers={**headers, **GOOD})
        assert allowed.status_code == 200
        assert allowed.headers.get("Idempotent-Replayed") is None


async def test_the_money_routes_work_with_the_service_token(guarded: httpx.AsyncClient) -> None:
    async def post(path: str, tx: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await guarded.post(path, json=body, headers={"transaction-id": tx, **GOOD})

    debit = await post("/debit", "t-1", {"account_id": "acc-01", "amount": 300})
    assert debit.status_code == 200
    assert debit.json()["balance_after"] == 9_700
    credit = await post("/credit", "t-1", {"account_id": "acc-02", "amount": 300})
    assert credit.status_code == 200
    assert credit.json()["balance_after"] == 10_300
    lost = await post("/debit", "t-2", {"account_id": "acc-01", "amount": 50})
    assert lost.status_code == 200
    assert (await post("/compensate_debit", "t-2")).status_code == 200
    assert (await post("/void_credit", "t-3")).status_code == 200  # a tombstone
    answer = await guarded.post("/batch", json=MOVES["/batch"], headers=GOOD)
    assert answer.status_code == 200
    assert [r["status_code"] for r in answer.json()["results"]] == [200, 200]
    accounts = (await guarded.get("/accounts", headers=READ)).json()
    assert {a["account_id"]: a["balance"] for a in accounts["accounts"]} == {
        "acc-01": 10_000 - 300 - 7,
        "acc-02": 10_000 + 300 + 9,
    }


async def test_the_service_token_opens_no_admin_route(guarded: httpx.AsyncClient) -> None:
    opened = {"account_id": "rich", "initial_balance": 10**9}
    assert (await guarded.post("/accounts", json=opened, headers=GOOD)).status_code == 401
    faults = {"rate": 1.0, "mode": "before"}
    assert (await guarded.put("/admin/faults", json=faults, headers=GOOD)).status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (await guarded.post("/accounts", json=opened, headers=admin)).status_code == 201


async def test_without_a_service_token_the_money_routes_stay_open(tmp_path: Path) -> None:
    async for client in asgi_client(guarded_settings(tmp_path, service_token=None)):
        body = {"account_id": "acc-01", "amount": 1}
        answer = await client.post("/debit", json=body, headers={"transaction-id": "open-1"})
        assert answer.status_code == 200


async def test_the_service_token_guards_exactly_the_money_routes(tmp_path: Path) -> None:
    """Every POST route of the account service and the orchestrator, called with no token: the
    service guard's refusal comes from exactly the money routes (the hosted participants'
    routes, under their prefixes, are the kit's and tested with it)."""
    app = create_app(guarded_settings(tmp_path, role=ProcessRole.ALL))
    posts = {
        route.path
        for route in _routes(app.routes)
        if isinstance(route, APIRoute)
        and "POST" in route.methods
        and not route.path.startswith(("/inventory/", "/orders/"))
    }
    guarded = set()
    async for client in _client(app):
        for path in posts:
            url = path.replace("{saga_type}", "transfer").replace("{saga_id}", "x")
            url = url.replace("{transaction_id}", "x")
            answer = await client.post(url, json={}, headers={"transaction-id": "g-1"})
            if answer.status_code == 401 and "service token" in answer.json()["message"]:
                guarded.add(path)
    assert guarded == set(MOVES)
    assert len(posts) > len(MOVES)  # the others were asked too


class Recording(httpx.AsyncBaseTransport):
    """Delivers to the app in process, noting each request's path and `Authorization`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, request.headers.get("authorization")))
        return await self.inner.handle_async_request(request)


async def _call(participant: HttpParticipant, operation: str, tx: str, account: str) -> Outcome:
    body = {"account_id": account, "amount": 10}
    result = await participant.call(
        service="accounts", operation=operation, transaction_id=tx, body=body, timeout=5
    )
    return result.outcome


async def test_the_participant_sends_the_service_token_on_singles_and_batches(
    tmp_path: Path,
) -> None:
    settings = guarded_settings(tmp_path, accounts_url="http://sagabank")
    async for client in asgi_client(settings):
        transport = Recording(httpx.ASGITransport(app=client.app))  # type: ignore[attr-defined]
        # The participant bootstrap gives the orchestrator, on an in-process transport.
        participant = build_participant(settings, DEFINITIONS, transport=transport)
        try:
            alone = await _call(participant, "debit", "p-1", "acc-01")  # alone: a single POST
            # Calls made in one turn of the event loop leave together as one `POST /batch`.
            together = [_call(participant, "credit", f"p-{i}", "acc-02") for i in range(2, 6)]
            outcomes = {alone, *await asyncio.gather(*together)}
        finally:
            await participant.close()
        assert outcomes == {Outcome.SUCCEEDED}
        assert {path for path, _ in transport.seen} == {"/debit", "/batch"}
        assert {auth for _, auth in transport.seen} == {f"Bearer {SERVICE}"}
        accounts = (await client.get("/accounts", headers=READ)).json()
        assert accounts["total"] == 20_000 - 10 + 4 * 10
