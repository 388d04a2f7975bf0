"""What the kit's router gives every participant beyond the rules, over the counter service of
test_participant_kit.py: batch items observed as their single endpoints (a span each, a child
of the item's `traceparent`; replays reported by route, under the host's prefix), `/health`
left out for a host with its own, the OpenAPI document of each operation, and any `Served`
(not only a `ParticipantService`) served the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, StrictInt

from repository_after.participant_kit import Action, Answer, Kind, ParticipantService
from repository_after.participant_kit.http import EdgeHooks, inline_schema, participant_router
from tests.unit.test_participant_kit import CreditIn
from tests.unit.test_participant_kit import service as service

TRACE_ID, CALLER = 0xAB12 << 100, 0xCD34 << 40
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER:016x}-01"


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kit")


def _credit(key: str, **extra: object) -> dict[str, object]:
    return {"operation": "credit", "transaction_id": key, "name": "c", "amount": 1, **extra}


async def test_batch_items_are_spans_of_their_callers_and_replays_are_told_by_route(
    service: ParticipantService,
) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    replays: list[str] = []
    hooks = EdgeHooks(tracer=provider.get_tracer("test"), on_replay=replays.append)
    app = FastAPI()
    app.include_router(participant_router(service, hooks=hooks), prefix="/counter")
    async with _client(app) as http:
        first = {"operations": [_credit("k1", traceparent=TRACEPARENT), _credit("k2")]}
        assert (await http.post("/counter/batch", json=first)).status_code == 200
        assert replays == []
        again = await http.post("/counter/batch", json={"operations": [_credit("k1")]})
        assert again.json()["results"][0]["replayed"] is True
    assert replays == ["/counter/credit"]  # the single endpoint's route, under the prefix
    finished = spans.get_finished_spans()
    assert [s.attributes["sagabank.transaction_id"] for s in finished] == ["k1", "k2", "k1"]
    joined, alone, replayed = finished
    assert (joined.name, joined.kind) == ("POST /counter/credit", SpanKind.SERVER)
    assert joined.attributes["http.response.status_code"] == 200
    assert joined.parent is not None
    assert (joined.context.trace_id, joined.parent.span_id) == (TRACE_ID, CALLER)
    for span in (alone, replayed):  # no caller (and no batch span here): a trace of its own
        assert span.parent is None
        assert span.context.trace_id != TRACE_ID


async def test_without_hooks_a_batch_runs_unobserved(service: ParticipantService) -> None:
    app = FastAPI()
    app.include_router(participant_router(service))
    async with _client(app) as http:
        for _ in range(2):
            r = await http.post("/batch", json={"operations": [_credit("k1")]})
            assert r.status_code == 200


@pytest.mark.parametrize("health", [True, False])
async def test_health_is_left_out_for_a_host_with_its_own(
    service: ParticipantService, health: bool
) -> None:
    app = FastAPI()
    app.include_router(participant_router(service, health=health))
    async with _client(app) as http:
        r = await http.get("/health")
    assert r.status_code == (200 if health else 404)


class CounterOut(BaseModel):
    name: str
    total: int
    status: str


def test_the_openapi_document_names_the_key_the_body_and_the_answer(
    service: ParticipantService,
) -> None:
    app = FastAPI()
    models = {"credit": CounterOut}
    app.include_router(participant_router(service, response_models=models))
    paths = app.openapi()["paths"]
    credit = paths["/credit"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in credit["parameters"]] == [
        ("transaction-id", "header", True)
    ]
    body = credit["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == CreditIn.model_json_schema()
    answer = credit["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/CounterOut"}
    # A compensation's body is optional, and an operation without a response model has none.
    uncredit = paths["/uncredit"]["post"]
    assert uncredit["requestBody"]["required"] is False
    assert uncredit["responses"]["200"]["content"]["application/json"]["schema"] == {}
    batch = paths["/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    item = batch["properties"]["operations"]["items"]
    assert item["properties"]["operation"]["enum"] == [*service.operations]


class _Inner(BaseModel):
    n: StrictInt


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: _Inner
    many: list[_Inner]


class _Loop(BaseModel):
    next: _Loop | None = None


def test_an_inline_schema_stands_alone_and_a_recursive_model_is_refused() -> None:
    schema = inline_schema(_Outer)
    assert "$defs" not in schema
    assert "$ref" not in orjson.dumps(schema).decode()
    assert schema["properties"]["inner"]["properties"]["n"]["type"] == "integer"
    assert schema["properties"]["many"]["items"]["required"] == ["n"]
    with pytest.raises(ValueError, match="recursive"):
        inline_schema(_Loop)


class Echo:
    """A participant that is not a `ParticipantService`: what the router uses, and no more."""

    name = "echo"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, BaseModel | None]] = []

    @property
    def operations(self) -> Mapping[str, tuple[Kind, Action[Any]]]:
        return {"shout": (Kind.ACTION, Action("shout", CreditIn, lambda *_: {}))}

    def request_model(self, operation: str) -> type[BaseModel] | None:
        return CreditIn

    def parse(self, operation: str, raw: object) -> BaseModel | None:
        return CreditIn.model_validate(raw)

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer:
        self.calls.append((operation, key, body))
        return Answer(201, orjson.dumps({"heard": key}), replayed=key == "again")

    async def check_health(self) -> bool:
        return False


async def test_any_served_participant_gets_the_same_edge() -> None:
    echo = Echo()
    app = FastAPI()
    app.include_router(participant_router(echo))
    async with _client(app) as http:
        body = {"name": "c", "amount": 1}
        r = await http.post("/shout", json=body, headers={"transaction-id": "k"})
        assert (r.status_code, r.json()) == (201, {"heard": "k"})
        replay = await http.post("/shout", json=body, headers={"transaction-id": "again"})
        assert replay.headers["Idempotent-Replayed"] == "true"
        refused = await http.post("/shout", json={"name": 1}, headers={"transaction-id": "x"})
        assert refused.json()["error"] == "invalid_request"
        assert (await http.get("/health")).status_code == 503
    assert [(op, key) for op, key, _ in echo.calls] == [("shout", "k"), ("shout", "again")]
