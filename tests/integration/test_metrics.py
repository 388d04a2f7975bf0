"""`GET /metrics`: saga outcomes, step latencies, retries, voids, compensations, parked sagas,
the age of the oldest unsettled saga, injected faults, idempotent replays and HTTP requests;
every saga series labelled by its saga type.

Real transfers over real loopback HTTP: the orchestrator app (ASGITransport) calls an account
service served by uvicorn in the test's event loop, each app with its own registry.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.service_process import free_port
from repository_after.observability.telemetry import Telemetry
from tests.integration.observability_support import (
    ORDER,
    orchestrator_client,
    orchestrator_settings,
    samples,
    served,
    served_all,
    settings,
    stock_apples,
    value,
)


async def _transfer(client: httpx.AsyncClient, tx_id: str, amount: int) -> httpx.Response:
    return await client.post(
        "/transfers",
        headers={"transaction-id": tx_id},
        json={"source": "acc-01", "target": "acc-02", "amount": amount},
    )


async def test_metrics_count_outcomes_retries_voids_compensations_faults_and_replays(
    tmp_path: Path,
) -> None:
    async with served(settings(tmp_path, "accounts", role="accounts")) as accounts_url:
        orch_settings = orchestrator_settings(tmp_path, accounts_url)
        async with (
            orchestrator_client(orch_settings) as client,
            httpx.AsyncClient(base_url=accounts_url) as accounts,
        ):
            assert (await _transfer(client, "m-ok", 100)).json()["status"] == "completed"
            faults = await accounts.put("/admin/faults", json={"rate": 1.0, "mode": "before"})
            assert faults.status_code == 200
            assert (await _transfer(client, "m-void", 100)).json()["status"] == "compensated"
            assert (await _transfer(client, "m-poor", 10**6)).json()["status"] == "rejected"
            replay = await _transfer(client, "m-ok", 100)
            assert replay.headers["Idempotent-Replayed"] == "true"
            for _ in range(2):
                debit = await accounts.post(
                    "/debit",
                    headers={"transaction-id": "direct-1"},
                    json={"account_id": "acc-02", "amount": 1},
                )
                assert debit.status_code == 200

            orch = samples((await client.get("/metrics")).text)
            acc = samples((await accounts.get("/metrics")).text)

    t = {"saga": "transfer"}
    for outcome in ("completed", "compensated", "rejected"):
        assert value(orch, "sagabank_saga_outcomes_total", outcome=outcome, **t) == 1
        assert value(orch, "sagabank_sagas", status=outcome, **t) == 1
    assert value(orch, "sagabank_sagas_started_total", **t) == 3
    # m-void: three unknown credits (two retries), then void_credit answers "voided", then the
    # debit is compensated.
    assert value(orch, "sagabank_step_retries_total", operation="credit", **t) == 2
    assert (
        value(
            orch,
            "sagabank_step_attempt_duration_seconds_count",
            operation="credit",
            outcome="unknown",
            **t,
        )
        == 3
    )
    assert (
        value(orch, "sagabank_settlements_total", operation="void_credit", result="voided", **t)
        == 1
    )
    assert (
        value(
            orch,
            "sagabank_compensations_total",
            operation="compensate_debit",
            outcome="succeeded",
            **t,
        )
        == 1
    )
    assert (
        value(
            orch,
            "sagabank_step_duration_seconds_count",
            operation="debit",
            outcome="succeeded",
            **t,
        )
        == 2
    )
    assert (
        value(
            orch, "sagabank_step_duration_seconds_count", operation="debit", outcome="rejected", **t
        )
        == 1
    )
    # a series for every type this server runs, parked sagas or not
    assert value(orch, "sagabank_parked_sagas", saga="transfer") == 0
    assert value(orch, "sagabank_parked_sagas", saga="order") == 0
    assert value(orch, "sagabank_idempotent_replays_total", route="/transfers") == 1
    assert (
        value(orch, "sagabank_http_requests_total", method="POST", route="/transfers", status="200")
        == 4
    )

    assert value(acc, "sagabank_injected_faults_total", point="before") == 3
    assert value(acc, "sagabank_idempotent_replays_total", route="/debit") == 1
    assert (
        value(acc, "sagabank_http_requests_total", method="POST", route="/credit", status="500")
        == 3
    )
    assert (
        value(acc, "sagabank_http_request_duration_seconds_count", method="POST", route="/debit")
        >= 5
    )


async def test_metrics_show_parked_sagas_and_the_age_of_the_oldest_unsettled_one(
    tmp_path: Path,
) -> None:
    # Nothing listens on this port: the debit's outcome stays unknown, so does its compensation.
    down = f"http://127.0.0.1:{free_port()}"
    orch_settings = orchestrator_settings(tmp_path, down, retry_attempts=1, settle_attempts=2)
    async with orchestrator_client(orch_settings, wait_recovery=False) as client:
        assert (await _transfer(client, "m-park", 100)).json()["status"] == "failed_needs_attention"
        log = client.app.state.container.orchestrator.log  # type: ignore[attr-defined]
        # A saga logged but not driven (as after a crash before its first step).
        started = SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")
        params = {"source": "acc-01", "target": "acc-02", "amount": 5}
        await log.create(
            saga_id="m-old",
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params=params,
            events=[started],
        )
        parsed = samples((await client.get("/metrics")).text)

    t = {"saga": "transfer"}
    assert value(parsed, "sagabank_parked_sagas", **t) == 1
    assert value(parsed, "sagabank_sagas", status="failed_needs_attention", **t) == 1
    assert value(parsed, "sagabank_saga_outcomes_total", outcome="failed_needs_attention", **t) == 1
    assert (
        value(
            parsed,
            "sagabank_compensations_total",
            operation="compensate_debit",
            outcome="exhausted",
            **t,
        )
        == 1
    )
    age = "sagabank_oldest_unsettled_saga_age_seconds"
    assert value(parsed, age, kind="parked", **t) > 0
    # m-old started at its event's time, 2026-01-01: older than anything this run creates.
    assert value(parsed, age, kind="in_flight", **t) > value(parsed, age, kind="parked", **t)
    assert value(parsed, age, kind="in_flight", saga="order") == 0  # no order at all
    assert value(parsed, "sagabank_sagas", status="started", **t) == 1


async def test_an_order_and_a_transfer_each_have_their_own_series(tmp_path: Path) -> None:
    """One process in role `all` runs a transfer and an order: each type's sagas, steps and
    outcomes are counted under its own `saga` label, never under the other's."""
    async with served_all(tmp_path) as client:
        await stock_apples(client)
        transfer = await _transfer(client, "m-t", 100)
        order = await client.post("/sagas/order", json=ORDER, headers={"transaction-id": "m-o"})
        assert (transfer.json()["status"], order.json()["status"]) == ("completed", "completed")
        parsed = samples((await client.get("/metrics")).text)

    o, t = {"saga": "order"}, {"saga": "transfer"}
    for labels in (o, t):
        assert value(parsed, "sagabank_sagas", status="completed", **labels) == 1
        assert value(parsed, "sagabank_saga_outcomes_total", outcome="completed", **labels) == 1
        assert value(parsed, "sagabank_sagas_started_total", **labels) == 1
        assert value(parsed, "sagabank_parked_sagas", **labels) == 0
        assert (
            value(parsed, "sagabank_oldest_unsettled_saga_age_seconds", kind="in_flight", **labels)
            == 0
        )
    step = "sagabank_step_duration_seconds_count"
    for operation in ("create", "reserve", "debit", "credit", "sell", "confirm"):
        assert value(parsed, step, operation=operation, outcome="succeeded", **o) == 1
    for operation in ("debit", "credit"):
        assert value(parsed, step, operation=operation, outcome="succeeded", **t) == 1
    for operation in ("create", "reserve"):  # an order's operations never count as a transfer's
        assert (
            step,
            frozenset({**t, "operation": operation, "outcome": "succeeded"}.items()),
        ) not in parsed
    assert sum(v for (name, _), v in parsed.items() if name == "sagabank_sagas") == 2


async def test_every_app_has_its_own_registry(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    first = Telemetry(orchestrator_settings(tmp_path, down))
    second = Telemetry(orchestrator_settings(tmp_path, down))
    first.http_metrics.requests.labels("GET", "/x", "200").inc()

    assert (
        value(
            samples(first.metrics.render().decode()),
            "sagabank_http_requests_total",
            method="GET",
            route="/x",
            status="200",
        )
        == 1
    )
    assert (
        "sagabank_http_requests_total",
        frozenset({"method": "GET", "route": "/x", "status": "200"}.items()),
    ) not in samples(second.metrics.render().decode())
