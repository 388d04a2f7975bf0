"""The order saga end to end on sagabank, over loopback HTTP, as `cqrs_order` runs it on
python-cqrs: the same seeded plan (`plan.order_plan`), the same participant services, the same
30 % credit faults (`scenarios.server_env`).

One `sagabank serve --role all` process: the orchestrator, and the participants it calls over
loopback HTTP, the account service with the inventory and the orders services under
`/inventory` and `/orders` (services/hosting.py), each on its own SQLite file (the orchestrator's
saga log shares the account service's). The load generator (`loads.post_all`, aiohttp) POSTs
each order to `/sagas/order` under its own saga id (`transaction-id`) and waits for the answer,
which comes once the saga is settled. What sagabank does per order (domain/order.py): it logs
every intent before its call and every outcome (fsynced, group commit); create, reserve, charge,
pay, sell, confirm, each under `<saga id>:<step>` but the charge and the payment, under the saga
id; one attempt per call (`SAGABANK_RETRY_ATTEMPTS` 1, as python-cqrs retries nothing); a failed
payment (an injected 500: an unknown outcome) is settled with `void_credit` before the charge,
the reservation and the order are compensated. Anything but 200 with `completed` or
`compensated` stops the run. After it, the books are audited (`order_books.audit`).

Figures: `LoadFigures` (CPU per order: server = the one process, client = the load generator),
each outcome's count, `log_entries_per_saga` (rows of the saga log's `saga_events`, written
before and after each call; several sagas' writes share one fsync) and `audit_violations`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

from repository_after.entrypoints.service_process import ServiceProcess
from sagabank_tools.bench.loads import post_all
from sagabank_tools.bench.measure import LoadFigures, cpu_seconds
from sagabank_tools.bench.order_books import OUTCOMES, audit, open_stock, with_audit
from sagabank_tools.bench.plan import ORDER_BALANCE, order_plan
from sagabank_tools.bench.scenarios import server_env, server_pid


def _log_entries(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM saga_events").fetchone()[0])


def sagabank_orders(*, n: int, concurrency: int, seed: int) -> dict[str, float]:
    """The figures of n planned orders, `concurrency` in flight, on a fresh server."""
    plan = order_plan(n, seed)
    requests = [(order.transaction_id, order.body()) for order in plan]
    outcomes = dict.fromkeys(OUTCOMES, 0)

    def settled(saga_id: str, status: int, body: bytes) -> None:
        ended = orjson.loads(body).get("status") if status == 200 else None
        if ended not in outcomes:
            raise RuntimeError(f"order saga {saga_id} answered {status}: {body[:200]!r}")
        outcomes[ended] += 1

    with tempfile.TemporaryDirectory(prefix="sagabank-bench-orders-") as tmp:
        database = Path(tmp) / "bank.db"
        env = {
            **server_env(seed),
            "SAGABANK_DATABASE_URL": f"sqlite:///{database}",
            "SAGABANK_DEMO_BALANCE": str(ORDER_BALANCE),
        }
        with ServiceProcess(env=env, role="all") as server:
            pid = server_pid(server)
            asyncio.run(open_stock(server.url))
            server0, client0 = cpu_seconds(pid), time.process_time()
            latencies, wall = asyncio.run(
                post_all(server.url, "/sagas/order", requests, concurrency, settled)
            )
            server_cpu, client_cpu = cpu_seconds(pid) - server0, time.process_time() - client0
            entries = _log_entries(database)
            violations = asyncio.run(audit(server.url, [o.order_id for o in plan]))
    figures = {
        **vars(LoadFigures.of(latencies, wall, client_cpu, server_cpu)),
        **{name: float(count) for name, count in outcomes.items()},
        "log_entries_per_saga": entries / n,
    }
    return with_audit(figures, violations)
