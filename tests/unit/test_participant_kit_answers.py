"""The participant kit's HTTP edge, answer by answer: the exact 4xx body of every way a request
or a batch can be refused (where it was wrong and why, the input never echoed), and the edges of
what a batch accepts (1 and `max_batch` items, a `traceparent` up to 256 characters). The rules
themselves (exactly once, tombstones, replay) are in test_participant_kit.py, over the same
small counter service. And how the edge documents each operation (OpenAPI): its role and action."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from repository_after.participant_kit import ParticipantService, Refusal, install_error_handlers
from repository_after.participant_kit.http import MAX_BATCH
from repository_after.service_layer.ports import StorageError
from tests.unit.test_participant_kit import _app, records
from tests.unit.test_participant_kit import (
    http as http,  # the counter service's HTTP client and the service (fixtures)
)
from tests.unit.test_participant_kit import service as service

OK = {"operation": "credit", "transaction_id": "fine", "name": "c", "amount": 1}
LOC = ("body", "operations")
SHAPE = {"loc": ["body"], "msg": "expected {'operations': [...]}", "type": "batch_shape"}
SIZE = {
    "loc": ["body", "operations"],
    "msg": f"a batch holds 1 to {MAX_BATCH} operations",
    "type": "batch_size",
}


def _at(field: str | None, msg: str, type_: str, item: int = 1) -> dict[str, Any]:
    """A detail about an item of a batch (by default the second: the first is `OK`)."""
    loc: list[Any] = [*LOC, item]
    return {"loc": [*loc, field] if field else loc, "msg": msg, "type": type_}


def invalid(*details: dict[str, Any]) -> dict[str, Any]:
    return {"error": "invalid_request", "message": "the request is invalid", "details": [*details]}


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        ({}, [SHAPE]),
        ([], [SHAPE]),
        ({"operations": "credit"}, [SHAPE]),  # the right key, not a list
        ({"operations": [], "extra": 1}, [SHAPE]),
        ({"operations": []}, [SIZE]),
        ({"operations": [OK] * (MAX_BATCH + 1)}, [SIZE]),
        ({"operations": [OK, "credit"]}, [_at(None, "expected an object", "dict_type")]),
        (
            {"operations": [OK, {"operation": "nope", "transaction_id": "k"}]},
            [_at("operation", "unknown operation", "operation")],
        ),
        (
            {"operations": [OK, {**OK, "transaction_id": "bad key"}]},
            [_at("transaction_id", "invalid transaction id", "transaction_id")],
        ),
        (
            {"operations": [OK, {**OK, "traceparent": "x" * 257}]},
            [_at("traceparent", "invalid traceparent", "traceparent")],
        ),
        (
            {"operations": [OK, {"operation": 7, "transaction_id": 7, "traceparent": 7}]},
            [
                _at("operation", "unknown operation", "operation"),
                _at("transaction_id", "invalid transaction id", "transaction_id"),
                _at("traceparent", "invalid traceparent", "traceparent"),
            ],
        ),
        (
            {"operations": [OK, {"operation": "credit", "transaction_id": "k", "name": "c"}]},
            [_at("amount", "Field required", "missing")],
        ),
        (  # every item is judged, not only up to the first bad one
            {
                "operations": [
                    OK,
                    "credit",
                    {"operation": "nope", "transaction_id": "k"},
                    {"operation": "credit", "transaction_id": "k", "name": "c"},
                    {**OK, "transaction_id": "bad key"},
                ]
            },
            [
                _at(None, "expected an object", "dict_type"),
                _at("operation", "unknown operation", "operation", 2),
                _at("amount", "Field required", "missing", 3),
                _at("transaction_id", "invalid transaction id", "transaction_id", 4),
            ],
        ),
    ],
)
async def test_an_invalid_batch_says_where_and_why_and_runs_nothing(
    http: httpx.AsyncClient, service: ParticipantService, payload: Any, details: list[Any]
) -> None:
    r = await http.post("/batch", json=payload)
    assert (r.status_code, r.json()) == (422, invalid(*details))
    assert r.headers["content-type"] == "application/json"
    assert await records(service) == []


@pytest.mark.parametrize("size", [1, MAX_BATCH])
async def test_a_batch_of_one_and_of_the_most_items_runs(
    http: httpx.AsyncClient, service: ParticipantService, size: int
) -> None:
    items = [{**OK, "transaction_id": f"k{i}", "traceparent": "t" * 256} for i in range(size)]
    r = await http.post("/batch", json={"operations": items})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [(x["status_code"], x["replayed"], x["body"]["value"]) for x in results] == [
        (200, False, i + 1) for i in range(size)
    ]
    assert len(await records(service)) == size


async def test_an_operation_s_answer_and_its_replay_are_json(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        r = await http.post(
            "/credit", json={"name": "c", "amount": 1}, headers={"transaction-id": "k"}
        )
        assert (r.status_code, r.headers["content-type"]) == (200, "application/json")


@pytest.mark.parametrize("path", ["/credit", "/batch"])
async def test_a_body_that_is_not_json_is_named_as_such(
    http: httpx.AsyncClient, service: ParticipantService, path: str
) -> None:
    r = await http.post(path, content=b'{"name": ', headers={"transaction-id": "k1"})
    assert (r.status_code, r.json()) == (
        422,
        # where decoding stopped (byte 9, the end), as FastAPI names it on the account service
        invalid({"loc": ["body", 9], "msg": "JSON decode error", "type": "json_invalid"}),
    )
    assert await records(service) == []


@pytest.mark.parametrize("headers", [{}, {"transaction-id": "bad key"}])
async def test_a_missing_or_bad_key_says_what_a_key_is(
    http: httpx.AsyncClient, service: ParticipantService, headers: dict[str, str]
) -> None:
    r = await http.post("/credit", json={"name": "c", "amount": 1}, headers=headers)
    assert (r.status_code, r.json()) == (
        422,
        {
            "error": "invalid_transaction_id",
            "message": "header 'transaction-id' is required: 1-128 characters of letters, "
            "digits, '.', '_', ':' or '-'",
        },
    )
    assert await records(service) == []


async def test_an_invalid_body_names_the_field_not_the_input(
    http: httpx.AsyncClient, service: ParticipantService
) -> None:
    r = await http.post(
        "/credit", json={"name": "c", "amount": 1.5}, headers={"transaction-id": "k1"}
    )
    assert (r.status_code, r.json()) == (
        422,
        invalid(
            {
                "loc": ["body", "amount"],
                "msg": "Input should be a valid integer",
                "type": "int_type",
            }
        ),
    )
    assert await records(service) == []


def _error(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


async def test_a_participant_app_answers_its_own_routes_errors_in_the_products_shape() -> None:
    """`install_error_handlers`: a host's own routes' failures are answered like the kit's
    operations: a `Refusal` and a storage failure as the kit does, Starlette's 404/405 and an
    HTTPException by code, a bad query parameter as `invalid_request`, anything else 500 (no
    driver text, no traceback)."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/refused")
    async def refused() -> None:
        raise Refusal("stock_limit_exceeded", "sku 'a' would pass 10", 409)

    @app.get("/storage")
    async def storage() -> None:
        raise StorageError("sqlite: database is locked")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    @app.get("/limited")
    async def limited(limit: int) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("SELECT secret FROM internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        answers = {
            "/refused": (409, _error("stock_limit_exceeded", "sku 'a' would pass 10")),
            "/storage": (
                503,
                _error("storage_unavailable", "storage is unavailable; retry later"),
            ),
            "/teapot": (418, _error("http_error", "short and stout")),
            "/nowhere": (404, _error("not_found", "Not Found")),
            "/limited?limit=x": (
                422,
                invalid(
                    {
                        "loc": ["query", "limit"],
                        "msg": "Input should be a valid integer, unable to parse string as an "
                        "integer",
                        "type": "int_parsing",
                    }
                ),
            ),
            "/bug": (500, _error("internal_error", "internal error")),
        }
        for path, answer in answers.items():
            r = await client.get(path)
            assert (r.status_code, r.json()) == answer, path
        r = await client.post("/refused")
        assert (r.status_code, r.json()) == (
            405,
            _error("method_not_allowed", "Method Not Allowed"),
        )


def test_the_openapi_names_each_operation_s_role_and_action(service: ParticipantService) -> None:
    """A participant's API documents which route is an action and which the compensation or
    settlement of which action, each operation's `transaction-id` header and body (required for
    an action, optional for a compensation or settlement: it is a check), and every route of the
    kit with its method."""
    paths = _app(service).openapi()["paths"]

    def shape(method: str, path: str) -> tuple[Any, ...]:
        op = paths[path][method]
        header = [(p["name"], p["in"], p.get("required")) for p in op.get("parameters", [])]
        body = op.get("requestBody", {}).get("required")
        return op["summary"], op["operationId"], header, body, sorted(op["responses"])

    key = [("transaction-id", "header", True)]
    assert shape("post", "/credit") == (
        "action of credit",
        "credit_credit_post",
        key,
        True,
        ["200"],
    )
    assert shape("post", "/uncredit") == (
        "compensation of credit",
        "uncredit_uncredit_post",
        key,
        False,
        ["200"],
    )
    assert shape("post", "/void_credit") == (
        "settlement of credit",
        "void_credit_void_credit_post",
        key,
        False,
        ["200"],
    )
    assert shape("post", "/batch") == (
        "several operations of counter in one exchange",
        "batch_batch_post",
        [],
        True,
        ["200"],
    )
    assert set(paths) == {"/credit", "/uncredit", "/void_credit", "/batch", "/health", "/faults"}
    assert set(paths["/health"]) == set(paths["/faults"]) == {"get"}
    credit_body = paths["/credit"]["post"]["requestBody"]["content"]["application/json"]
    assert set(credit_body["schema"]["properties"]) == {"name", "amount"}


async def test_a_call_without_the_service_token_is_told_what_it_lacks(
    service: ParticipantService,
) -> None:
    """With a service token set, an operation or `/batch` without it (or with another) is the
    same 401, whole; the health check stays open."""
    transport = httpx.ASGITransport(app=_app(service, token="s3cret-token"))
    refused = (401, _error("unauthorized", "this endpoint requires the service token"))
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        for headers in ({}, {"authorization": "Bearer other"}, {"authorization": "s3cret-token"}):
            tx = {**headers, "transaction-id": "k1"}
            r = await client.post("/credit", json={"name": "c", "amount": 1}, headers=tx)
            assert (r.status_code, r.json()) == refused, headers
            r = await client.post("/batch", json={"operations": [OK]}, headers=headers)
            assert (r.status_code, r.json()) == refused, headers
        assert (await client.get("/health")).status_code == 200
        bearer = {"authorization": "Bearer s3cret-token", "transaction-id": "k1"}
        r = await client.post("/credit", json={"name": "c", "amount": 1}, headers=bearer)
        assert r.status_code == 200
    assert await records(service) == [("credit", "k1", 200)]
