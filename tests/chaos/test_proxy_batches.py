"""The chaos proxy splits a `POST /batch` into the single requests its items stand for: each item's
transaction id and trace context travel as headers, as the single endpoints take them. A real
account service (uvicorn on loopback, tracing to memory) behind a real proxy."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from repository_after.config import ProcessRole
from repository_after.observability.telemetry import Telemetry
from sagabank_tools.chaos.proxy import FaultProxy
from sagabank_tools.chaos.schedule import Schedule
from tests.integration.observability_support import served, settings

TRACE_ID, SPAN_ID = 0x5EED << 90, 0xBEEF << 30


async def test_batched_items_reach_the_service_as_their_single_requests(tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    accounts = settings(tmp_path, "accounts", role=ProcessRole.ACCOUNTS)
    async with served(accounts, Telemetry(accounts, span_exporter=spans)) as upstream:
        proxy = FaultProxy(schedule=Schedule(seed=1, families=()), upstream=upstream)
        url = await proxy.start()
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await client.post(
                    "/batch",
                    json={
                        "operations": [
                            {
                                "operation": "debit",
                                "transaction_id": "px-1",
                                "account_id": "acc-01",
                                "amount": 5,
                                "traceparent": f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01",
                            },
                            {"operation": "compensate_debit", "transaction_id": "px-2"},
                        ]
                    },
                )
        finally:
            await proxy.close()
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status_code"] for r in results] == [200, 200]
    assert [r["body"]["status"] for r in results] == ["applied", "nothing_to_compensate"]
    assert proxy.batched == 2
    (debit,) = [s for s in spans.get_finished_spans() if s.name == "POST /debit"]
    assert debit.attributes["sagabank.transaction_id"] == "px-1"
    assert debit.context.trace_id == TRACE_ID
    assert debit.parent is not None
    assert debit.parent.span_id == SPAN_ID
