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
import dataclasses
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol

import typer

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.library import Refused, RetryPolicy, SagaRunner
from repository_after.library.examples.order import Item, OrderParams, order_saga
from repository_after.library.examples.order_services import OrderServices
from sagabank_tools.bench.measure import LoadFigures

#: One attempt per call, as python-cqrs (which retries no step).
ONCE = RetryPolicy(max_attempts=1)


class Services(Protocol):
    def reserve_items(self, *, key: str, order_id: str, items: str) -> str: ...
    def release_items(self, *, key: str) -> None: ...
    def charge(self, *, key: str, user_id: str, amount: int) -> str: ...
    def refund(self, *, key: str) -> None: ...
    def create_shipment(self, *, key: str, address: str) -> str: ...
    def shipped(self, *, key: str) -> bool: ...
    def close(self) -> None: ...


class NoopServices:
    """`OrderServices`' methods on a dict: each effect once per (kind, key), no I/O."""

    def __init__(self) -> None:
        self.effects: dict[tuple[str, str], str] = {}

    def _apply(self, kind: str, key: str, value: str) -> str:
        return self.effects.setdefault((kind, key), value)

    def reserve_items(self, *, key: str, order_id: str, items: str) -> str:
        return self._apply("reserve", key, f"rsv-{order_id}-{len(items)}")

    def release_items(self, *, key: str) -> None:
        self._apply("release", key, "released")

    def charge(self, *, key: str, user_id: str, amount: int) -> str:
        return self._apply("charge", key, f"pay-{user_id}-{amount}")

    def refund(self, *, key: str) -> None:
        self._apply("refund", key, "refunded")

    def create_shipment(self, *, key: str, address: str) -> str:
        if not address:
            raise Refused("no shipping address")
        return self._apply("ship", key, address)

    def shipped(self, *, key: str) -> bool:
        return ("ship", key) in self.effects

    def close(self) -> None:
        pass


def orders(n: int) -> list[OrderParams]:
    """n orders; every 10th has no shipping address (refused at the pivot: compensated)."""
    return [
        OrderParams(
            order_id=f"order-{i}",
            user_id=f"user-{i % 50}",
            items=[Item(sku=f"sku-{i % 7}", quantity=1 + i % 3)],
            total_amount=1_000 + i,
            shipping_address="" if i % 10 == 9 else f"{i} Bench Street",
        )
        for i in range(n)
    ]


async def _load(
    plan: list[OrderParams], concurrency: int, one: Callable[[OrderParams], Awaitable[str]]
) -> tuple[list[float], float, float, dict[str, int]]:
    """(latencies, wall seconds, CPU seconds of this process, outcome counts)."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    counts: dict[str, int] = {}

    async def run(order: OrderParams) -> None:
        async with gate:
            start = time.perf_counter()
            outcome = await one(order)
            latencies.append(time.perf_counter() - start)
            counts[outcome] = counts.get(outcome, 0) + 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(run(order) for order in plan))
    return latencies, time.perf_counter() - wall0, time.process_time() - cpu0, counts


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

        latencies, wall, cpu, counts = await _load(plan, concurrency, one)
    return _figures(latencies, wall, cpu, counts, log.writes, log.commits)


async def cqrs_run(
    tmp: Path, services: Services, plan: list[OrderParams], concurrency: int
) -> dict[str, float]:
    import cqrs
    from cqrs.saga.models import SagaContext
    from cqrs.saga.storage.sqlalchemy import SagaLogModel, SqlAlchemySagaStorage
    from sqlalchemy import event, func, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from sagabank_tools.bench.cqrs_saga import _create_schema, run_to_end

    @dataclasses.dataclass
    class OrderContext(SagaContext):  # python-cqrs's docs' context, as the params + the ids
        order_id: str
        user_id: str
        items: list[dict[str, Any]]
        total_amount: int
        shipping_address: str
        saga_id: str = ""
        reservation_id: str = ""
        payment_id: str = ""
        shipment_id: str = ""

    class Step(cqrs.SagaStepHandler[OrderContext, None]):
        name: ClassVar[str] = ""

        def __init__(self, s: Services) -> None:
            self.s = s

        def key(self, ctx: OrderContext) -> str:
            return f"{ctx.saga_id}:{self.name}"

    class ReserveInventoryStep(Step):
        name = "reserve_inventory"

        async def act(self, ctx: OrderContext) -> cqrs.SagaStepResult[OrderContext, None]:
            items = json.dumps(ctx.items)
            ctx.reservation_id = self.s.reserve_items(
                key=self.key(ctx), order_id=ctx.order_id, items=items
            )
            return self._generate_step_result(None)

        async def compensate(self, ctx: OrderContext) -> None:
            self.s.release_items(key=self.key(ctx))

    class ProcessPaymentStep(Step):
        name = "process_payment"

        async def act(self, ctx: OrderContext) -> cqrs.SagaStepResult[OrderContext, None]:
            ctx.payment_id = self.s.charge(
                key=self.key(ctx), user_id=ctx.user_id, amount=ctx.total_amount
            )
            return self._generate_step_result(None)

        async def compensate(self, ctx: OrderContext) -> None:
            self.s.refund(key=self.key(ctx))

    class ShipOrderStep(Step):
        name = "ship_order"

        async def act(self, ctx: OrderContext) -> cqrs.SagaStepResult[OrderContext, None]:
            ctx.shipment_id = self.s.create_shipment(
                key=self.key(ctx), address=ctx.shipping_address
            )
            return self._generate_step_result(None)

        async def compensate(self, ctx: OrderContext) -> None:
            pass  # the last step: never compensated (it is the one that failed)

    class OrderSaga(cqrs.Saga[OrderContext]):
        steps: ClassVar = [ReserveInventoryStep, ProcessPaymentStep, ShipOrderStep]

    # As `cqrs_saga.drive`: a 60 s busy timeout, so that writers queueing on SQLite's lock
    # under concurrency wait instead of failing the run ("database is locked").
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp / 'cqrs-sagas.db'}", connect_args={"timeout": 60}
    )
    async with engine.begin() as conn:
        await conn.run_sync(_create_schema)
    commits = 0

    def count_commit(_: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine.sync_engine, "commit", count_commit)
    storage = SqlAlchemySagaStorage(async_sessionmaker(engine, expire_on_commit=False))
    saga = OrderSaga()
    steps: Any = _Steps(services, OrderSaga.steps)  # python-cqrs's `Container`, duck-typed

    async def one(order: OrderParams) -> str:
        saga_id = uuid.uuid4()
        ctx = OrderContext(**order.model_dump(), saga_id=str(saga_id))
        try:
            await run_to_end(saga, ctx, steps, storage, saga_id)
        except Refused:
            return "compensated"
        return "completed"

    latencies, wall, cpu, counts = await _load(plan, concurrency, one)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(SagaLogModel))).scalar_one()
    await engine.dispose()
    return _figures(latencies, wall, cpu, counts, rows, commits)


class _Steps:
    """The smallest python-cqrs container: one instance of each step over the services."""

    def __init__(self, services: Services, step_types: Iterable[Any]) -> None:
        self._services = services
        self._steps = {t: t(services) for t in step_types}

    @property
    def external_container(self) -> Services:
        return self._services

    def attach_external_container(self, container: Services) -> None:
        self._services = container

    async def resolve(self, type_: type[Any]) -> Any:
        return self._steps[type_]


def _figures(
    latencies: list[float],
    wall: float,
    cpu: float,
    counts: dict[str, int],
    writes: int,
    commits: int,
) -> dict[str, float]:
    n = len(latencies)
    load = LoadFigures.of(latencies, wall, cpu, 0.0)
    return {
        "per_second": load.per_second,
        "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms,
        "cpu_ms_per_saga": load.client_cpu_ms,
        "log_writes_per_saga": writes / n,
        "log_commits_per_saga": commits / n,
        "completed": float(counts.get("completed", 0)),
        "compensated": float(counts.get("compensated", 0)),
    }


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
