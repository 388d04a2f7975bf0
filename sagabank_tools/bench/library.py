"""The saga library against python-cqrs, both in one process, running the SAME step functions.

    python -m sagabank_tools.bench.library [--orders 1000] [--concurrency 16]
                                           [--repetitions 5] [--steps noop|sqlite]

The saga is the worked example (`repository_after.library.examples.order`: reserve inventory,
process payment, ship; python-cqrs's documentation's order saga), every 10th order refused at
shipping (no address: the payment refunded, the stock released). Both engines call the same
service methods with the same keys (`<saga id>:<step>`): `--steps noop` an in-memory keyed
store (what remains is each engine's own cost), `--steps sqlite` the example's SQLite services
file (one committed transaction per effect, on the event loop's thread, as the example has it).

- sagabank: `SagaRunner` on its SQLite saga log (WAL, synchronous=FULL, group commit), the
  example's `order_saga` as written; one attempt per call (python-cqrs retries no step).
- python-cqrs: `Saga.transaction` with a `SagaStepHandler` per step calling the same methods,
  on its `SqlAlchemySagaStorage` on `sqlite+aiosqlite`, set up as `cqrs_saga.drive` does
  (SQLite's defaults: rollback journal, synchronous=FULL).

Per run: orders/s, p50/p99 latency, CPU per saga (this whole process: engine, event loop,
SQLite threads), log writes per saga (sagabank: `create` + `append` calls; python-cqrs: rows of
`saga_logs`) and log commits per saga (each a COMMIT, i.e. at least one fsync: sagabank's counted
by an sqlite3 trace callback on its log's connection, python-cqrs's by SQLAlchemy's `commit`
event). Medians over the repetitions, which alternate the two systems; the ratio of medians and
each repetition's own ratio are printed. Fresh files per run, under a temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.library import RetryPolicy, SagaRunner
from repository_after.library.examples.order import OrderParams, order_saga
from repository_after.library.examples.order_services import OrderServices
from sagabank_tools.bench.library_cqrs import cqrs_run
from sagabank_tools.bench.library_load import NoopServices, Services, figures, load, orders

#: One attempt per call, as python-cqrs (which retries no step).
ONCE = RetryPolicy(max_attempts=1)


class _CountingLog(SqliteSagaLog):
    """The SQLite saga log, counting its writes (`create`, `append`) and its COMMITs."""

    writes = 0
    commits = 0

    def count_commits(self) -> None:
        def trace(statement: str) -> None:
            if statement == "COMMIT":
                self.commits += 1

        # The connection is the adapter's own (`SqliteDatabase`); only the bench looks at it.
        conn: sqlite3.Connection = self.database._conn
        conn.set_trace_callback(trace)

    async def create(self, **kw: Any) -> Any:
        self.writes += 1
        return await super().create(**kw)

    async def append(self, saga_id: str, events: Any, **kw: Any) -> None:
        self.writes += 1
        await super().append(saga_id, events, **kw)


async def sagabank_run(
    tmp: Path, services: Services, plan: list[OrderParams], concurrency: int
) -> dict[str, float]:
    log = _CountingLog(tmp / "sagabank-sagas.db")
    log.count_commits()
    saga = order_saga(services)  # type: ignore[arg-type]  # the same methods, duck-typed
    async with SagaRunner([saga], log=log, forward=ONCE, settle=ONCE, observers=()) as runner:

        async def one(order: OrderParams) -> str:
            view = await runner.run(saga, order, saga_id=order.order_id)
            return view.status

        latencies, wall, cpu, counts = await load(plan, concurrency, one)
    return figures(latencies, wall, cpu, counts, log.writes, log.commits)


SYSTEMS: dict[str, Callable[..., Coroutine[Any, Any, dict[str, float]]]] = {
    "sagabank": sagabank_run,
    "python-cqrs": cqrs_run,
}


def one_run(system: str, *, n: int, concurrency: int, steps: str) -> dict[str, float]:
    """One run of `system` on fresh files; raises if an order ended otherwise than expected."""
    plan = orders(n)
    with tempfile.TemporaryDirectory(prefix="sagabank-bench-library-") as name:
        tmp = Path(name)
        services: Services = (
            OrderServices(tmp / "services.db") if steps == "sqlite" else NoopServices()
        )
        try:
            figures = asyncio.run(SYSTEMS[system](tmp, services, plan, concurrency))
        finally:
            services.close()
    refused = sum(1 for order in plan if not order.shipping_address)
    if (figures["completed"], figures["compensated"]) != (n - refused, refused):
        raise RuntimeError(f"{system}: unexpected outcomes {figures}")
    return figures


def compare(*, n: int, concurrency: int, repetitions: int, steps: str) -> dict[str, Any]:
    """Both systems, `repetitions` times each, alternating: medians, ratios, every run."""
    runs: dict[str, list[dict[str, float]]] = {system: [] for system in SYSTEMS}
    for _ in range(repetitions):
        for system in SYSTEMS:
            runs[system].append(one_run(system, n=n, concurrency=concurrency, steps=steps))
    medians = {
        system: {k: statistics.median(r[k] for r in each) for k in each[0]}
        for system, each in runs.items()
    }
    a, b = runs["sagabank"], runs["python-cqrs"]
    return {
        "orders": n,
        "concurrency": concurrency,
        "steps": steps,
        "repetitions": repetitions,
        "medians": medians,
        "ratio": medians["sagabank"]["per_second"] / medians["python-cqrs"]["per_second"],
        "ratio_within_each_repetition": [
            x["per_second"] / y["per_second"] for x, y in zip(a, b, strict=True)
        ],
        "each_repetition": runs,
    }


def main(
    orders_: Annotated[int, typer.Option("--orders", min=10, help="orders per run")] = 1000,
    concurrency: Annotated[
        list[int] | None, typer.Option(min=1, help="sagas in flight (repeatable; 1 and 16)")
    ] = None,
    repetitions: Annotated[int, typer.Option(min=1, help="runs of each system")] = 5,
    steps: Annotated[str, typer.Option(help="noop: in-memory effects; sqlite: a file")] = "noop",
    output: Annotated[Path | None, typer.Option(help="JSON report")] = None,
) -> None:
    """The saga library against python-cqrs, in process, on the same steps; medians, ratio."""
    if steps not in ("noop", "sqlite"):
        raise typer.BadParameter("--steps is noop or sqlite")
    reports = [
        compare(n=orders_, concurrency=c, repetitions=repetitions, steps=steps)
        for c in concurrency or (1, 16)
    ]
    columns = ("per_second", "p50_ms", "p99_ms", "cpu_ms_per_saga")
    typer.echo(
        f"order saga in process, {orders_} orders per run (every 10th compensated), "
        f"{steps} steps, medians of {repetitions} runs"
    )
    typer.echo(
        f"{'system':12} {'c':>3} " + " ".join(f"{c:>15}" for c in columns) + "  log writes/commits"
    )
    for report in reports:
        for system, m in report["medians"].items():
            cells = " ".join(f"{m[c]:15.2f}" for c in columns)
            writes, commits = m["log_writes_per_saga"], m["log_commits_per_saga"]
            typer.echo(
                f"{system:12} {report['concurrency']:>3} {cells}  {writes:.2f} / {commits:.2f}"
            )
    for report in reports:
        within = ", ".join(f"{r:.2f}" for r in report["ratio_within_each_repetition"])
        typer.echo(
            f"sagabank/python-cqrs at c={report['concurrency']}: {report['ratio']:.2f}x "
            f"(within each repetition: {within})"
        )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    typer.run(main)
