"""Helpers for the metrics and tracing tests: an account service on real loopback HTTP, in process.

The orchestrator app is reached through ASGITransport, but it calls its account service over real
HTTP, so the account app runs under uvicorn on a free loopback port inside the test's event loop.
Both apps can be given their own `Telemetry` (e.g. with an in-memory span exporter).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client.parser import text_string_to_metric_families

from repository_after.config import ProcessRole, Settings
from repository_after.entrypoints.app import create_app
from repository_after.observability.telemetry import Telemetry

#: An order `served_all` runs to completion once `stock_apples` stocked its inventory.
ORDER: dict[str, object] = {
    "order_id": "o-1",
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 2}],
    "total": 300,
}


async def stock_apples(client: httpx.AsyncClient, qty: int = 5) -> None:
    """Stock the inventory a `served_all` process hosts with `qty` apples."""
    stocked = await client.post("/inventory/stock", json={"sku": "apple", "qty": qty})
    assert stocked.status_code == 200, stocked.text


def settings(tmp_path: Path, name: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / (name + '.db')}",
        "credit_failure_rate": 0.0,
        "demo_accounts": 2,
        "demo_balance": 1000,
        "admin_token": None,
        "service_token": None,
        "retry_initial_backoff": 0.01,
        "retry_max_backoff": 0.02,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def _serving(sock: socket.socket, app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on the bound, listening `sock` until the block ends; yields its URL."""
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, ws="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


def _loopback_socket() -> socket.socket:
    # Bound here (port 0) and handed to uvicorn: no moment where the port is free for another
    # process to take, as there would be between a `free_port()` and uvicorn's own bind.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@asynccontextmanager
async def served(settings: Settings, telemetry: Telemetry | None = None) -> AsyncIterator[str]:
    """Serve the app on a free loopback port until the block ends; yields its URL."""
    with _loopback_socket() as sock:
        async with _serving(sock, create_app(settings, telemetry=telemetry)) as url:
            yield url


@asynccontextmanager
async def served_all(
    tmp_path: Path, *, span_exporter: SpanExporter | None = None, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    """Role `all` (the account service, the inventory and orders it hosts, the orchestrator
    calling them over HTTP at its own URL) on a free loopback port, on SQLite files in
    `tmp_path`, tracing to `span_exporter` if given; yields a client on its URL once its worker
    is ready (every service answered)."""
    with _loopback_socket() as sock:
        port = sock.getsockname()[1]
        config = settings(
            tmp_path, "sagabank", role=ProcessRole.ALL, port=port, transfer_wait=30, **overrides
        )
        telemetry = Telemetry(config, span_exporter=span_exporter) if span_exporter else None
        app = create_app(config, telemetry=telemetry)
        async with (
            _serving(sock, app) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            async with asyncio.timeout(30):
                while app.state.readiness is None or not app.state.readiness.ready:
                    await asyncio.sleep(0.01)
            client.app = app  # type: ignore[attr-defined]
            yield client


class _Recovered(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        self.seen = self.seen or record.getMessage().startswith("recovery:")


@asynccontextmanager
async def orchestrator_client(
    settings: Settings, telemetry: Telemetry | None = None, *, wait_recovery: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The orchestrator app; with `wait_recovery`, yields once its start-up recovery has run.

    Start-up recovery claims the unsettled sagas leased under this worker's id, which includes
    a transfer started just before it ran: these tests are about the operator surface, not that
    race, so they start transfers once recovery is done.
    """
    app = create_app(settings, telemetry=telemetry)
    logger = logging.getLogger("repository_after.service_layer.orchestrator")
    recovered, level = _Recovered(), logger.level
    logger.addHandler(recovered)
    logger.setLevel(logging.INFO)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
                client.app = app  # type: ignore[attr-defined]
                async with asyncio.timeout(10):
                    while wait_recovery and not recovered.seen:
                        await asyncio.sleep(0.01)
                yield client
    finally:
        logger.removeHandler(recovered)
        logger.setLevel(level)


def orchestrator_settings(tmp_path: Path, accounts_url: str, **overrides: object) -> Settings:
    return settings(
        tmp_path, "sagas", role=ProcessRole.ORCHESTRATOR, accounts_url=accounts_url, **overrides
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text -> {(sample name, labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sample's value; a missing sample fails (a typo must not read as zero)."""
    return parsed[(name, frozenset(labels.items()))]
