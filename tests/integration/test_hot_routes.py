"""Hot routes (`entrypoints/hot_routes.py`): well-formed requests to the endpoints every transfer
goes through skip FastAPI's routing and dependency solving, every other request takes it, and
either way the answer is the same, byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from repository_after.entrypoints.app import create_app
from repository_after.entrypoints.hot_routes import HotRoutes
from tests.conftest import accounts_settings

#: Requests that cover answers of every kind: applied, replayed, refused by the rules, refused
#: by validation, with and without headers, single and batched.
SCRIPT: list[tuple[str, dict[str, Any] | str | None, dict[str, str]]] = [
    ("/accounts", {"account_id": "a", "initial_balance": 1_000}, {}),
    ("/accounts", {"account_id": "b", "initial_balance": 0}, {}),
    ("/debit", {"account_id": "a", "amount": 300}, {"transaction-id": "t1"}),
    ("/debit", {"account_id": "a", "amount": 300}, {"transaction-id": "t1"}),  # replay
    ("/debit", {"account_id": "a", "amount": 999}, {"transaction-id": "t1"}),  # key reused
    ("/credit", {"account_id": "b", "amount": 300}, {"transaction-id": "t2"}),
    ("/debit", {"account_id": "b", "amount": 10_000}, {"transaction-id": "t3"}),  # no funds
    ("/debit", {"account_id": "nobody", "amount": 1}, {"transaction-id": "t4"}),
    ("/debit", {"account_id": "a", "amount": -5}, {"transaction-id": "t5"}),  # invalid
    ("/debit", {"account_id": "a", "amount": 1.5}, {"transaction-id": "t6"}),  # not an int
    ("/debit", {"account_id": "a", "amount": 5}, {}),  # no transaction id
    ("/debit", {"account_id": "a", "amount": 5}, {"transaction-id": "bad id!"}),
    ("/debit", '{"account_id": "a", "amount": 5', {"transaction-id": "t7"}),  # broken JSON
    ("/debit", "[" * 20_000 + "]" * 20_000, {"transaction-id": "t7"}),  # too deep to parse
    ("/credit", {"account_id": "a", "amount": 5, "extra": 1}, {"transaction-id": "t8"}),
    ("/credit", '{"account_id": "a", "amount": NaN}', {"transaction-id": "t8"}),  # not JSON
    ("/credit", '{"account_id": "a", "amount": ' + "9" * 30 + "}", {"transaction-id": "t8"}),
    ("/compensate_debit", {"account_id": "a", "amount": 999}, {"transaction-id": "t1"}),
    ("/compensate_debit", {"account_id": "a", "amount": 300}, {"transaction-id": "t1"}),
    ("/compensate_debit", {"account_id": "a", "amount": 300}, {"transaction-id": "t1"}),
    ("/compensate_debit", None, {"transaction-id": "t10"}),  # no body: FastAPI's way
    ("/compensate_debit", "null", {"transaction-id": "t11"}),
    ("/void_credit", {"account_id": "b"}, {"transaction-id": "t2"}),
    ("/void_credit", {"amount": "x"}, {"transaction-id": "t12"}),  # invalid
    (
        "/batch",
        {
            "operations": [
                {"operation": "debit", "transaction_id": "t9", "account_id": "a", "amount": 1},
                {"operation": "credit", "transaction_id": "t2", "account_id": "b", "amount": 300},
                {"operation": "compensate_debit", "transaction_id": "t9"},
            ]
        },
        {},
    ),
    ("/batch", {"operations": []}, {}),  # invalid: refused whole
]


async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
            yield client


async def _run_script(client: httpx.AsyncClient) -> list[tuple[int, bytes, str | None]]:
    answers = []
    for path, body, headers in SCRIPT:
        if body is None:
            r = await client.post(path, headers=headers)
        elif isinstance(body, str):
            r = await client.post(
                path, content=body, headers={**headers, "content-type": "application/json"}
            )
        else:
            r = await client.post(path, json=body, headers=headers)
        answers.append((r.status_code, r.content, r.headers.get("Idempotent-Replayed")))
    return answers


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's router handed to a route (hot requests never get there)."""
    paths: list[str] = []
    original = APIRoute.handle

    async def handle(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        paths.append(self.path)
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", handle)
    return paths


async def test_the_answers_are_the_same_with_and_without_hot_routes(tmp_path: Path) -> None:
    hot = create_app(accounts_settings(tmp_path / "hot"))
    plain = create_app(accounts_settings(tmp_path / "plain"))
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not HotRoutes]
    assert len(plain.user_middleware) == len(hot.user_middleware) - 1
    async for client in _client(hot):
        hot_answers = await _run_script(client)
    async for client in _client(plain):
        plain_answers = await _run_script(client)
    for step, (a, b) in enumerate(zip(hot_answers, plain_answers, strict=True)):
        assert a == b, (SCRIPT[step], a, b)
    codes = [code for code, _, _ in hot_answers]
    assert {200, 201, 400, 409, 422}.issubset(codes)  # the script does cover those answers
    replayed = [step for step, (_, _, flag) in enumerate(hot_answers) if flag == "true"]
    assert len(replayed) >= 2  # a replayed debit and a replayed compensation


async def test_only_well_formed_hot_requests_skip_fastapi_routing(
    tmp_path: Path, handled: list[str]
) -> None:
    async for client in _client(create_app(accounts_settings(tmp_path))):
        await client.post("/accounts", json={"account_id": "a", "initial_balance": 100})
        assert handled == ["/accounts"]  # not a hot route
        handled.clear()
        ok = await client.post(
            "/debit", json={"account_id": "a", "amount": 1}, headers={"transaction-id": "t1"}
        )
        assert ok.status_code == 200
        batch = await client.post(
            "/batch",
            json={
                "operations": [
                    {"operation": "credit", "transaction_id": "t2", "account_id": "a", "amount": 1}
                ]
            },
        )
        assert batch.status_code == 200
        assert handled == []  # both went the short way
        refused = await client.post(
            "/debit", json={"account_id": "a", "amount": 0}, headers={"transaction-id": "t3"}
        )
        assert refused.status_code == 422
        as_text = await client.post(
            "/credit",
            content=b'{"account_id": "a", "amount": 1}',
            headers={"transaction-id": "t4", "content-type": "text/plain"},
        )
        assert as_text.status_code == 422
        assert handled == ["/debit", "/credit"]  # FastAPI answered both refusals
