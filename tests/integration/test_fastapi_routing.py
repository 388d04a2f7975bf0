"""Every request goes through FastAPI's routing and dependency solving, and answers as before.

There was a second request path (`entrypoints/hot_routes.py`, removed): well-formed requests to
the transfer path's endpoints skipped FastAPI, so a dependency added to those routes (an auth
check, say) was silently skipped for them. These tests pin what replaced it: the app holds only
FastAPI's routes and our known middleware, every request of a script of valid, replayed, refused
and hostile requests reaches a FastAPI route, and the answers are byte for byte what both paths
gave when there were two. The admin guard is a dependency of every route it protects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route

from repository_after.config import ProcessRole
from repository_after.entrypoints.app import create_app
from repository_after.entrypoints.deps import require_admin
from repository_after.entrypoints.limits import RequestLimits
from repository_after.observability.middleware import ObservabilityMiddleware
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


BAD_ID = (
    "header 'transaction-id' is required: 1-128 characters of letters, digits, '.', '_', ':' or '-'"
)

#: What the app answers to each request of SCRIPT, in order: (status, body, Idempotent-Replayed).
#: Recorded from the app before the bypass was removed, when both paths gave these bytes; since
#: the operations are served by the participant kit's edge, four answers to malformed input are
#: the kit's (each marked where it differs): still 422 `invalid_request`, naming what is wrong.
EXPECTED: list[tuple[int, dict[str, Any], str | None]] = [
    (201, {"account_id": "a", "balance": 1000, "opening_balance": 1000}, None),  # /accounts
    (201, {"account_id": "b", "balance": 0, "opening_balance": 0}, None),  # /accounts
    (
        200,
        {
            "transaction_id": "t1",
            "operation": "debit",
            "account_id": "a",
            "amount": 300,
            "balance_after": 700,
            "status": "applied",
        },
        None,
    ),  # /debit
    (
        200,
        {
            "transaction_id": "t1",
            "operation": "debit",
            "account_id": "a",
            "amount": 300,
            "balance_after": 700,
            "status": "applied",
        },
        "true",
    ),  # /debit
    (
        422,
        {
            "error": "idempotency_key_reused",
            "message": "transaction id 't1' was already used for a different debit request",
        },
        None,
    ),  # /debit
    (
        200,
        {
            "transaction_id": "t2",
            "operation": "credit",
            "account_id": "b",
            "amount": 300,
            "balance_after": 300,
            "status": "applied",
        },
        None,
    ),  # /credit
    (
        409,
        {"error": "insufficient_funds", "message": "account 'b' cannot cover 10000"},
        None,
    ),  # /debit
    (
        404,
        {"error": "account_not_found", "message": "account 'nobody' does not exist"},
        None,
    ),  # /debit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {
                    "loc": ["body", "amount"],
                    "msg": "Input should be greater than or equal to 1",
                    "type": "greater_than_equal",
                }
            ],
        },
        None,
    ),  # /debit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {
                    "loc": ["body", "amount"],
                    "msg": "Input should be a valid integer",
                    "type": "int_type",
                }
            ],
        },
        None,
    ),  # /debit
    (
        422,
        {
            "error": "invalid_transaction_id",
            "message": BAD_ID,
        },
        None,
    ),  # /debit
    (
        422,
        {
            "error": "invalid_transaction_id",
            "message": BAD_ID,
        },
        None,
    ),  # /debit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [{"loc": ["body", 31], "msg": "JSON decode error", "type": "json_invalid"}],
        },
        None,
    ),  # /debit
    (
        # The kit's edge (strict JSON, nesting to 1024): malformed JSON like any other, where
        # FastAPI's parser answered 400 `malformed_body` on its recursion limit.
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {"loc": ["body", 1025], "msg": "JSON decode error", "type": "json_invalid"}
            ],
        },
        None,
    ),  # /debit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {
                    "loc": ["body", "extra"],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
            ],
        },
        None,
    ),  # /credit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            # NaN is not JSON (RFC 8259): the kit's strict decoder says so, where FastAPI's
            # decoder took it and the schema refused it as no integer.
            "details": [{"loc": ["body", 30], "msg": "JSON decode error", "type": "json_invalid"}],
        },
        None,
    ),  # /credit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {
                    # A number beyond 64 bits decodes as a float in the kit's decoder (orjson),
                    # which the strict schema refuses as no integer (FastAPI's: over the bound).
                    "loc": ["body", "amount"],
                    "msg": "Input should be a valid integer",
                    "type": "int_type",
                }
            ],
        },
        None,
    ),  # /credit
    (
        422,
        {
            "error": "idempotency_key_reused",
            "message": "compensate_debit for 't1' disagrees with the debit recorded for that id",
        },
        None,
    ),  # /compensate_debit
    (
        200,
        {
            "transaction_id": "t1",
            "operation": "compensate_debit",
            "account_id": "a",
            "amount": 300,
            "balance_after": 1000,
            "status": "compensated",
        },
        None,
    ),  # /compensate_debit
    (
        200,
        {
            "transaction_id": "t1",
            "operation": "compensate_debit",
            "account_id": "a",
            "amount": 300,
            "balance_after": 1000,
            "status": "compensated",
        },
        "true",
    ),  # /compensate_debit
    (
        200,
        {
            "transaction_id": "t10",
            "operation": "compensate_debit",
            "account_id": None,
            "amount": None,
            "balance_after": None,
            "status": "nothing_to_compensate",
        },
        None,
    ),  # /compensate_debit
    (
        200,
        {
            "transaction_id": "t11",
            "operation": "compensate_debit",
            "account_id": None,
            "amount": None,
            "balance_after": None,
            "status": "nothing_to_compensate",
        },
        None,
    ),  # /compensate_debit
    (
        200,
        {
            "transaction_id": "t2",
            "operation": "void_credit",
            "account_id": "b",
            "amount": 300,
            "balance_after": None,
            "status": "already_applied",
        },
        None,
    ),  # /void_credit
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {
                    "loc": ["body", "amount"],
                    "msg": "Input should be a valid integer",
                    "type": "int_type",
                }
            ],
        },
        None,
    ),  # /void_credit
    (
        200,
        {
            "results": [
                {
                    "status_code": 200,
                    "body": {
                        "transaction_id": "t9",
                        "operation": "debit",
                        "account_id": "a",
                        "amount": 1,
                        "balance_after": 999,
                        "status": "applied",
                    },
                    "replayed": False,
                },
                {
                    "status_code": 200,
                    "body": {
                        "transaction_id": "t2",
                        "operation": "credit",
                        "account_id": "b",
                        "amount": 300,
                        "balance_after": 300,
                        "status": "applied",
                    },
                    "replayed": True,
                },
                {
                    "status_code": 200,
                    "body": {
                        "transaction_id": "t9",
                        "operation": "compensate_debit",
                        "account_id": "a",
                        "amount": 1,
                        "balance_after": 1000,
                        "status": "compensated",
                    },
                    "replayed": False,
                },
            ]
        },
        None,
    ),  # /batch
    (
        422,
        {
            "error": "invalid_request",
            "message": "the request is invalid",
            "details": [
                {
                    "loc": ["body", "operations"],
                    "msg": "a batch holds 1 to 128 operations",  # the kit's batch: the bound named
                    "type": "batch_size",
                }
            ],
        },
        None,
    ),  # /batch
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
    """The paths FastAPI's router handed to a route."""
    paths: list[str] = []
    original = APIRoute.handle

    async def handle(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        paths.append(self.path)
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", handle)
    return paths


async def test_the_script_gets_the_answers_it_always_got(tmp_path: Path) -> None:
    async for client in _client(create_app(accounts_settings(tmp_path))):
        answers = await _run_script(client)
    assert len(answers) == len(EXPECTED)
    for step, (answer, (code, body, flag)) in enumerate(zip(answers, EXPECTED, strict=True)):
        compact = json.dumps(body, separators=(",", ":")).encode()
        assert answer == (code, compact, flag), (SCRIPT[step], answer)
    codes = [code for code, _, _ in answers]
    assert {200, 201, 404, 409, 422}.issubset(codes)  # the script does cover those answers
    replayed = [step for step, (_, _, flag) in enumerate(answers) if flag == "true"]
    assert len(replayed) >= 2  # a replayed debit and a replayed compensation


async def test_every_request_reaches_a_fastapi_route(tmp_path: Path, handled: list[str]) -> None:
    async for client in _client(create_app(accounts_settings(tmp_path))):
        await _run_script(client)
    # Valid or not, each request was routed by FastAPI (refusals included: FastAPI answered).
    assert handled == [path for path, _, _ in SCRIPT]


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, also those of included routers (kept as one node each by recent FastAPI)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _app(role: ProcessRole, tmp_path: Path) -> FastAPI:
    return create_app(accounts_settings(tmp_path, role=role, admin_token="t0ken"))


#: The routes FastAPI itself adds for the OpenAPI document and its viewers.
_DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.mark.parametrize("role", list(ProcessRole))
def test_the_app_holds_only_fastapi_routes_and_known_middleware(
    role: ProcessRole, tmp_path: Path
) -> None:
    app = _app(role, tmp_path)
    routes = list(_routes(app.routes))
    assert "/health" in {r.path for r in routes if isinstance(r, APIRoute)}  # the walk sees them
    for route in routes:
        assert isinstance(route, APIRoute) or (type(route) is Route and route.path in _DOCS), route
    assert [m.cls for m in app.user_middleware] == [ObservabilityMiddleware, RequestLimits]


#: The routes that change the service or operate a saga: each must depend on the admin guard.
_GUARDED = {
    ("POST", "/accounts"),
    ("PUT", "/admin/faults"),
    ("POST", "/transfers/{transaction_id}/retry"),
    ("POST", "/transfers/{transaction_id}/resolve"),
    ("POST", "/sagas/{saga_type}/{saga_id}/retry"),
    ("POST", "/sagas/{saga_type}/{saga_id}/resolve"),
}


def test_the_admin_guard_is_a_dependency_of_every_route_it_protects(tmp_path: Path) -> None:
    app = _app(ProcessRole.ALL, tmp_path)
    guarded = {
        (method, route.path)
        for route in _routes(app.routes)
        if isinstance(route, APIRoute)
        and any(d.call is require_admin for d in route.dependant.dependencies)
        for method in route.methods
    }
    assert guarded == _GUARDED


async def test_a_guarded_route_refuses_a_request_without_the_token(tmp_path: Path) -> None:
    app = _app(ProcessRole.ACCOUNTS, tmp_path)
    async for client in _client(app):
        body = {"account_id": "a", "initial_balance": 1}
        refused = await client.post("/accounts", json=body)
        assert refused.status_code == 401
        assert refused.json()["error"] == "unauthorized"
        auth = {"Authorization": "Bearer t0ken"}
        assert (await client.post("/accounts", json=body, headers=auth)).status_code == 201
