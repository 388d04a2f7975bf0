"""OpenTelemetry: one transfer is one trace, across the orchestrator and the account service.

The orchestrator and the account service are separate apps with separate tracer providers
(in-memory exporters); the account service is reached over real loopback HTTP, so the only link
between the two halves of the trace is the W3C `traceparent` header the participant sends.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from repository_after.config import OtelExporter, ProcessRole
from repository_after.entrypoints.service_process import free_port
from repository_after.observability.telemetry import Telemetry
from repository_after.observability.tracing import build_tracer_provider
from tests.integration.observability_support import (
    ORDER,
    orchestrator_client,
    orchestrator_settings,
    served,
    served_all,
    settings,
    stock_apples,
)

OPERATION_SPANS = frozenset({"POST /debit", "POST /credit"})


@asynccontextmanager
async def traced_services(
    tmp_path: Path,
    accounts_spans: InMemorySpanExporter,
    orchestrator_spans: InMemorySpanExporter,
    **orchestrator_overrides: object,
) -> AsyncIterator[httpx.AsyncClient]:
    """An account service on loopback and an orchestrator client, each tracing to its exporter."""
    accounts_settings = settings(tmp_path, "accounts", role=ProcessRole.ACCOUNTS)
    async with served(
        accounts_settings, Telemetry(accounts_settings, span_exporter=accounts_spans)
    ) as url:
        orch_settings = orchestrator_settings(tmp_path, url, **orchestrator_overrides)
        telemetry = Telemetry(orch_settings, span_exporter=orchestrator_spans)
        async with orchestrator_client(orch_settings, telemetry) as client:
            yield client


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


async def test_one_transfer_is_one_trace_across_orchestrator_and_account_service(
    tmp_path: Path,
) -> None:
    accounts_spans, orchestrator_spans = InMemorySpanExporter(), InMemorySpanExporter()
    async with traced_services(tmp_path, accounts_spans, orchestrator_spans) as client:
        answer = await client.post(
            "/transfers",
            headers={"transaction-id": "trace-1"},
            json={"source": "acc-01", "target": "acc-02", "amount": 100},
        )
        assert answer.json()["status"] == "completed"

    orch = by_name(orchestrator_spans.get_finished_spans())
    acc = by_name(accounts_spans.get_finished_spans())
    request, saga = orch["POST /transfers"], orch["saga transfer"]
    debit, credit = orch["transfer debit debit"], orch["transfer credit credit"]
    trace_id = request.context.trace_id
    spans = [request, saga, debit, credit, acc["POST /debit"], acc["POST /credit"]]
    assert {span.context.trace_id for span in spans} == {trace_id}
    # The account service's server spans are children of the orchestrator's step spans.
    assert acc["POST /debit"].parent.span_id == debit.context.span_id
    assert acc["POST /credit"].parent.span_id == credit.context.span_id
    assert acc["POST /debit"].kind is SpanKind.SERVER
    assert acc["POST /debit"].resource.attributes["service.name"] == "sagabank-accounts"
    assert saga.resource.attributes["service.name"] == "sagabank-orchestrator"
    assert saga.parent.span_id == request.context.span_id
    assert debit.parent.span_id == saga.context.span_id
    assert saga.attributes["sagabank.status"] == "completed"
    assert saga.attributes["sagabank.transaction_id"] == "trace-1"
    assert debit.attributes["sagabank.outcome"] == "succeeded"
    assert [e.attributes["http.response.status_code"] for e in credit.events] == [200]


async def test_the_saga_and_step_spans_carry_their_saga_type(tmp_path: Path) -> None:
    """One process in role `all` runs an order and a transfer: each saga span and each of its
    step spans is labelled with the saga's own type."""
    spans = InMemorySpanExporter()
    async with served_all(tmp_path, span_exporter=spans) as client:
        await stock_apples(client)
        sagas = [
            ("/sagas/order", "tr-o", ORDER),
            ("/transfers", "tr-t", {"source": "acc-01", "target": "acc-02", "amount": 100}),
        ]
        for path, tx_id, body in sagas:
            answer = await client.post(path, json=body, headers={"transaction-id": tx_id})
            assert answer.json()["status"] == "completed", answer.text

    saga_of = {
        (s.attributes["sagabank.transaction_id"], s.name): s.attributes.get("sagabank.saga")
        for s in spans.get_finished_spans()
        if s.attributes and s.name.startswith(("saga ", "order ", "transfer "))
    }
    order_steps = ["create create", "reserve reserve", "charge debit", "pay credit"]
    order_steps += ["sell sell", "confirm confirm"]
    assert saga_of == {
        ("tr-o", "saga order"): "order",
        **{("tr-o", f"order {step}"): "order" for step in order_steps},
        ("tr-t", "saga transfer"): "transfer",
        ("tr-t", "transfer debit debit"): "transfer",
        ("tr-t", "transfer credit credit"): "transfer",
    }


async def test_a_parked_saga_ends_its_span_in_error_with_every_attempt_recorded(
    tmp_path: Path,
) -> None:
    spans = InMemorySpanExporter()
    down = f"http://127.0.0.1:{free_port()}"
    orch_settings = orchestrator_settings(tmp_path, down, retry_attempts=1, settle_attempts=2)
    async with orchestrator_client(
        orch_settings, Telemetry(orch_settings, span_exporter=spans), wait_recovery=False
    ) as client:
        answer = await client.post(
            "/transfers",
            headers={"transaction-id": "trace-park"},
            json={"source": "acc-01", "target": "acc-02", "amount": 100},
        )
        assert answer.json()["status"] == "failed_needs_attention"

    finished = by_name(spans.get_finished_spans())
    saga = finished["saga transfer"]
    compensation = finished["transfer debit compensate_debit"]
    assert saga.status.status_code is StatusCode.ERROR
    assert compensation.status.status_code is StatusCode.ERROR
    assert compensation.attributes["sagabank.outcome"] == "exhausted"
    assert [e.attributes["outcome"] for e in compensation.events] == ["unknown", "unknown"]


def test_tracing_is_off_by_default_and_console_or_otlp_when_configured(tmp_path: Path) -> None:
    assert build_tracer_provider(settings(tmp_path, "x")) is None
    for exporter in (OtelExporter.CONSOLE, OtelExporter.OTLP):
        provider = build_tracer_provider(settings(tmp_path, "x", otel_exporter=exporter))
        assert provider is not None
        provider.shutdown()


#: Run in a child process: a global tracer provider cannot be unset once a process has one.
_GLOBAL_PROVIDER = """
import asyncio, sys
from pathlib import Path
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from repository_after.entrypoints.app import create_app
from tests.conftest import accounts_settings

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

async def main() -> None:
    app = create_app(accounts_settings(Path(sys.argv[1])))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
            r = await client.post("/accounts", json={"account_id": "a", "initial_balance": 1})
            assert r.status_code == 201, r.text

asyncio.run(main())
print(len(exporter.get_finished_spans()))
"""


def test_fastapis_own_telemetry_stays_off_under_a_global_tracer_provider(tmp_path: Path) -> None:
    """Our middleware makes the server spans (when tracing is on); FastAPI's native telemetry
    would add a second one for each request as soon as a process sets a global provider."""
    done = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


async def test_transfers_whose_calls_were_batched_are_still_one_trace_each(
    tmp_path: Path,
) -> None:
    accounts_spans, orchestrator_spans = InMemorySpanExporter(), InMemorySpanExporter()
    # One exchange in flight: calls made together leave as one `POST /batch`.
    async with traced_services(
        tmp_path, accounts_spans, orchestrator_spans, participant_max_in_flight=1
    ) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/transfers",
                    headers={"transaction-id": f"batched-{i}"},
                    json={"source": "acc-01", "target": "acc-02", "amount": 10},
                )
                for i in range(6)
            )
        )
        assert [a.json()["status"] for a in answers] == ["completed"] * 6

    sagas = {
        s.attributes["sagabank.transaction_id"]: s
        for s in orchestrator_spans.get_finished_spans()
        if s.name == "saga transfer"
    }
    steps = {
        s.context.span_id: s
        for s in orchestrator_spans.get_finished_spans()
        if s.name.startswith("transfer ")
    }
    operations = [s for s in accounts_spans.get_finished_spans() if s.name in OPERATION_SPANS]
    assert any(s.attributes.get("sagabank.batched") for s in operations)  # batches did happen
    assert len(operations) == 12  # a debit and a credit per transfer, batched or not
    for span in operations:
        tx = span.attributes["sagabank.transaction_id"]
        assert span.context.trace_id == sagas[tx].context.trace_id
        # the parent is that saga's step span for this very operation
        step = steps[span.parent.span_id]
        assert step.attributes["sagabank.transaction_id"] == tx
        operation = span.name.removeprefix("POST /")
        assert step.name == f"transfer {operation} {operation}"
