"""Orchestration beside choreography (issue 24, item 6): one saga type, one seeded plan, one mode.

`mode_run(saga=, mode=, n=, concurrency=, seed=)` starts ONE fresh `sagabank serve --role all`
process on its own SQLite files, in `orchestration` (the orchestrator calls the participants over
loopback HTTP) or `choreography` (they react to messages over RabbitMQ, the tracker projects the
saga log), and submits the same plan to the same API (`loads.post_all`: `POST /transfers` or
`POST /sagas/order`, each under its own `transaction-id`; the answer comes once the saga is at
rest, as the log shows it, so the latency is start → terminal as the client sees it in both
modes). Choreography takes `SAGABANK_BROKER_URL` and a topology prefix of its own
(`sagabank-bench-<run>`), deleted afterwards, as the choreography demo does.

No faults in either mode: the HTTP edge's credit faults are not drawn in choreography, and a
participant fault there is a failed delivery (redelivered), not a refusal, so the two would not
face the same outcomes. Every account opens with `plan.ORDER_BALANCE` and every SKU with
`plan.STOCK`, so no saga is refused and both modes end every saga `completed` (checked: anything
else stops the run).

Figures per saga, read from the SQLite files once the load is done and every saga is at rest:
`saga_log_rows` (`saga_events`), `messages` (outbox rows published: 0 in orchestration, whose
calls are HTTP requests), `outbox_rows`, `inbox_rows`, `turn_rows` (the turn fence's
`choreography_turns`) and `writes` (their sum: the durable rows the saga's bookkeeping costs,
besides the business rows both modes write alike). Commits are shared by the stores' group
commit, so they are not counted per saga.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from repository_after.entrypoints.service_process import ServiceProcess
from sagabank_tools.bench.loads import post_all
from sagabank_tools.bench.measure import LoadFigures, cpu_seconds
from sagabank_tools.bench.order_books import audit, open_stock
from sagabank_tools.bench.plan import ORDER_BALANCE, order_plan, transfer_plan
from sagabank_tools.bench.scenarios import server_env, server_pid

MODES = ("orchestration", "choreography")
SAGAS = ("transfer", "order")
#: (figure, table, WHERE clause) summed over every SQLite file of the run
_ROWS = (
    ("saga_log_rows", "saga_events", ""),
    ("messages", "outbox", "WHERE published_at IS NOT NULL"),
    ("outbox_rows", "outbox", ""),
    ("inbox_rows", "inbox", ""),
    ("turn_rows", "choreography_turns", ""),
)


def _env(mode: str, database: Path, prefix: str, seed: int) -> dict[str, str]:
    return {
        **server_env(seed),
        "SAGABANK_MODE": mode,
        "SAGABANK_DATABASE_URL": f"sqlite:///{database}",
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
        "SAGABANK_DEMO_BALANCE": str(ORDER_BALANCE),
    }


def _requests(saga: str, n: int, seed: int) -> tuple[str, list[tuple[str, Any]], list[str]]:
    """(path, (saga id, body) each, the order ids to audit)."""
    if saga == "order":
        plan = order_plan(n, seed)
        return (
            "/sagas/order",
            [(o.transaction_id, o.body()) for o in plan],
            [o.order_id for o in plan],
        )
    bodies = [
        (f"bench-{i}", {"source": s, "target": t, "amount": a})
        for i, (s, t, a) in enumerate(transfer_plan(n, seed))
    ]
    return "/transfers", bodies, []


def count_rows(directory: Path) -> dict[str, int]:
    """Each of `_ROWS`' counts, summed over the SQLite files in `directory`."""
    totals = dict.fromkeys((name for name, _, _ in _ROWS), 0)
    for path in sorted(directory.glob("*.db")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
            for name, table, where in _ROWS:
                if table in tables:
                    query = f"SELECT COUNT(*) FROM {table} {where}"
                    totals[name] += int(conn.execute(query).fetchone()[0])
    return totals


async def _books(url: str, saga: str, order_ids: list[str]) -> list[str]:
    """Broken invariants after the run: the order audit, or the account service's own audit
    (money conserved, the books reconciled with the saga log)."""
    if saga == "order":
        return await audit(url, order_ids)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        found = (await client.get("/audit")).raise_for_status().json()
    return [str(v) for v in found["violations"]]


async def delete_topology(prefix: str) -> None:
    """Delete the run's queues and exchanges (`<prefix>.*`) from the broker."""
    from repository_after.choreography.wiring import deployment_topology
    from repository_after.config import load_settings
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    settings = load_settings(broker_prefix=prefix)
    broker = await RabbitMqBroker.connect(settings.broker_url.get_secret_value())
    try:
        await broker.delete(deployment_topology(settings))
    finally:
        await broker.close()


def mode_run(
    *, saga: str, mode: str, n: int, concurrency: int, seed: int, prefix: str | None = None
) -> dict[str, float]:
    """The figures of n planned sagas of type `saga` in `mode`, `concurrency` in flight; in
    choreography on the topology `prefix` (default: `sagabank-bench-<random>`), deleted after."""
    path, requests, order_ids = _requests(saga, n, seed)
    completed = 0

    def settled(saga_id: str, status: int, body: bytes) -> None:
        nonlocal completed
        ended = orjson.loads(body).get("status") if status == 200 else None
        if ended != "completed":
            raise RuntimeError(f"{mode} {saga} {saga_id} answered {status}: {body[:200]!r}")
        completed += 1

    prefix = prefix or f"sagabank-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="sagabank-bench-modes-") as tmp:
        env = _env(mode, Path(tmp) / "bank.db", prefix, seed)
        try:
            with ServiceProcess(env=env, role="all", log_path=Path(tmp) / "serve.log") as server:
                pid = server_pid(server)
                if saga == "order":
                    asyncio.run(open_stock(server.url))
                server0, client0 = cpu_seconds(pid), time.process_time()
                latencies, wall = asyncio.run(
                    post_all(server.url, path, requests, concurrency, settled)
                )
                server_cpu, client_cpu = cpu_seconds(pid) - server0, time.process_time() - client0
                violations = asyncio.run(_books(server.url, saga, order_ids))
        finally:
            if mode == "choreography":
                asyncio.run(delete_topology(prefix))
        rows = count_rows(Path(tmp))
    writes = rows["saga_log_rows"] + rows["outbox_rows"] + rows["inbox_rows"] + rows["turn_rows"]
    return {
        **vars(LoadFigures.of(latencies, wall, client_cpu, server_cpu)),
        "completed": float(completed),
        **{f"{name}_per_saga": count / n for name, count in rows.items()},
        "writes_per_saga": writes / n,
        "audit_violations": float(len(violations)),
    }
