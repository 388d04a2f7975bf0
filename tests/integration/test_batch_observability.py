"""`POST /batch` is observed item by item, as the single endpoints are: each item is a server
span in its caller's trace, logs with its transaction id, and counts its replay under its single
endpoint's route. The account service on a real SQLite file, through ASGITransport; the
orchestrator side (the items' `traceparent`) is in tests/unit/test_participant_batching.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from repository_after.entrypoints.app import create_app
from repository_after.observability.context import TransactionIdFilter
from repository_after.observability.telemetry import Telemetry
from tests.conftest import accounts_settings
from tests.integration.observability_support import samples, value
from tests.integration.test_accounts_api import new_id, open_account
from tests.integration.test_batch_api import batch, item

TRACE_ID, CALLER_SPAN_ID = 0xAB12 << 100, 0xCD34 << 40
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01"


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    settings = accounts_settings(tmp_path)
    app = create_app(settings, telemetry=Telemetry(settings, span_exporter=spans))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
            yield client, spans


async def test_each_batched_item_is_a_server_span_in_its_callers_trace(traced) -> None:
    api, spans = traced
    a = await open_account(api, 1000)
    b = await open_account(api, 0)
    with_caller, without, malformed = new_id(), new_id(), new_id()
    await batch(
        api,
        {**item("debit", with_caller, a, 300), "traceparent": TRACEPARENT},
        item("credit", without, b, 300),
        {**item("debit", malformed, a, 1), "traceparent": "00-not-a-trace-context"},
    )
    finished = spans.get_finished_spans()
    (outer,) = [s for s in finished if s.name == "POST /batch"]
    items = {
        s.attributes["sagabank.transaction_id"]: s
        for s in finished
        if s.attributes.get("sagabank.batched")
    }
    assert set(items) == {with_caller, without, malformed}
    joined = items[with_caller]
    assert joined.name == "POST /debit"
    assert joined.kind is SpanKind.SERVER
    assert joined.attributes["sagabank.batched"] is True
    assert joined.attributes["http.response.status_code"] == 200
    # A child of the saga step that called, in that step's trace, linked to the batch's span.
    assert joined.context.trace_id == TRACE_ID
    assert joined.parent is not None
    assert joined.parent.span_id == CALLER_SPAN_ID
    assert [link.context.span_id for link in joined.links] == [outer.context.span_id]
    # No caller context, or a malformed one (ignored, as in the header): under the batch's span.
    for tx in (without, malformed):
        assert items[tx].parent is not None
        assert items[tx].parent.span_id == outer.context.span_id
        assert items[tx].context.trace_id == outer.context.trace_id


async def test_batched_items_log_with_their_own_transaction_id(api, caplog) -> None:
    a = await open_account(api, 1000)
    first, second = new_id(), new_id()
    caplog.handler.addFilter(TransactionIdFilter())
    with caplog.at_level(logging.INFO, logger="repository_after.entrypoints.accounts_api"):
        await batch(api, item("debit", first, a, 10), item("debit", second, a, 20))
    lines = {
        r.getMessage().split()[1]: r.transaction_id  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage().startswith("debit ")
    }
    assert lines == {first: first, second: second}


async def test_a_replayed_batched_item_counts_under_its_single_endpoints_route(api) -> None:
    a = await open_account(api, 1000)
    tx, other = new_id(), new_id()
    await batch(api, item("debit", tx, a, 10))
    results = await batch(api, item("debit", tx, a, 10), item("debit", other, a, 10))
    assert [r["replayed"] for r in results] == [True, False]
    await api.post("/debit", headers={"transaction-id": tx}, json={"account_id": a, "amount": 10})
    metrics = samples((await api.get("/metrics")).text)
    # one replay inside a batch, one as a single request: the same series
    assert value(metrics, "sagabank_idempotent_replays_total", route="/debit") == 2
