"""The account service on the participant kit's edge (`entrypoints/account_edge.py`): its OpenAPI
document still names its strict schemas; a call outside the app's lifespan is an unknown outcome
(503), never a crash; the hosted participants' batches are observed by the same app (a span per
item, replays by route under the host's prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from repository_after.entrypoints.app import create_app
from repository_after.entrypoints.schemas import OperationIn, SettlementIn
from repository_after.observability.telemetry import Telemetry
from repository_after.participant_kit.http import inline_schema
from tests.conftest import accounts_settings
from tests.integration.observability_support import samples, value

JSON = "application/json"


def _documented(node: Any) -> Any:
    """A schema as the OpenAPI document holds it (FastAPI drops None values, `default: null`)."""
    if isinstance(node, dict):
        return {k: _documented(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_documented(v) for v in node]
    return node


def test_the_document_names_the_strict_schemas_of_every_operation(tmp_path: Path) -> None:
    paths = create_app(accounts_settings(tmp_path)).openapi()["paths"]
    for operation, model, required in [
        ("debit", OperationIn, True),
        ("credit", OperationIn, True),
        ("compensate_debit", SettlementIn, False),
        ("void_credit", SettlementIn, False),
    ]:
        post = paths[f"/{operation}"]["post"]
        assert post["requestBody"] == {
            "required": required,
            "content": {JSON: {"schema": _documented(inline_schema(model))}},
        }, operation
        assert [p["name"] for p in post["parameters"]] == ["transaction-id"]
        answer = post["responses"]["200"]["content"][JSON]["schema"]
        assert answer == {"$ref": "#/components/schemas/OperationOut"}
        assert post["responses"]["422"]["content"][JSON]["schema"]["$ref"].endswith("/ErrorOut")
    assert paths["/debit"]["post"]["requestBody"]["content"][JSON]["schema"]["required"] == [
        "account_id",
        "amount",
    ]
    batch = paths["/batch"]["post"]
    assert batch["responses"]["200"]["content"][JSON]["schema"]["$ref"].endswith("/BatchOut")
    items = batch["requestBody"]["content"][JSON]["schema"]["properties"]["operations"]
    assert items["maxItems"] == 128
    assert items["items"]["properties"]["operation"]["enum"] == [
        "debit",
        "compensate_debit",
        "credit",
        "void_credit",
    ]


async def test_a_call_before_start_up_is_an_unknown_outcome_not_a_crash(tmp_path: Path) -> None:
    app = create_app(accounts_settings(tmp_path))  # no lifespan: no store yet
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
        r = await client.post(
            "/debit", json={"account_id": "a", "amount": 1}, headers={"transaction-id": "t"}
        )
    assert (r.status_code, r.json()["error"]) == (503, "storage_unavailable")


async def test_a_hosted_participants_batch_is_observed_by_its_host(tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    settings = accounts_settings(tmp_path)
    app = create_app(settings, telemetry=Telemetry(settings, span_exporter=spans))
    release = {"operations": [{"operation": "release", "transaction_id": "r-1"}]}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
            for _ in range(2):
                r = await client.post("/inventory/batch", json=release)
                assert r.json()["results"][0]["body"]["status"] == "nothing_to_compensate"
            metrics = samples((await client.get("/metrics")).text)
    assert value(metrics, "sagabank_idempotent_replays_total", route="/inventory/release") == 1
    items = [s for s in spans.get_finished_spans() if s.attributes.get("sagabank.batched")]
    assert [s.name for s in items] == ["POST /inventory/release"] * 2
