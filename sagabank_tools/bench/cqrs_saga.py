"""python-cqrs's saga engine on its durable SQLite storage driving the same account service, over
loopback HTTP, as `scenarios.http_transfers` (same env, 30 % credit faults, the same seeded plan
(`plan.py`)). `drive`, `StepContainer` and `run_to_end` run any python-cqrs saga so (the order
saga's is `cqrs_order`).

Each transfer is a `Saga.transaction` (the engine under `SagaMediator`, less event dispatch):
`/debit` (undo `/compensate_debit`), then `/credit`, the saga id as `transaction-id`. A non-2xx
raises, so a faulted credit is compensated (python-cqrs never retries a step), and a debit the
account service refuses (4xx, e.g. insufficient funds) ends the saga rejected, with nothing to
undo. Its log is its `SqlAlchemySagaStorage` on `sqlite+aiosqlite` with SQLite's defaults
(rollback journal, synchronous=FULL: each commit fsynced; `drive` counts them) and SQLAlchemy's
default pool, bar an auto-numbered `saga_logs.id` (`_create_schema`: needed to run at all) and a
60 s busy timeout (see `drive`). Client CPU is this whole process (engine, SQLite threads,
httpx); server CPU the service's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from repository_after.entrypoints.service_process import ServiceProcess
from sagabank_tools.bench.measure import LoadFigures, cpu_seconds
from sagabank_tools.bench.plan import transfer_plan

if TYPE_CHECKING:
    from sqlalchemy import Connection


def _create_schema(conn: Connection) -> None:
    """python-cqrs's tables, but its `saga_logs.id` BIGINT + Identity() is not auto-numbered by
    SQLite (only INTEGER aliases the rowid): from `create_all` every step log insert fails."""
    from cqrs.saga.storage.sqlalchemy import Base, SagaExecutionModel, SagaLogModel
    from sqlalchemy.schema import CreateTable

    Base.metadata.create_all(conn, tables=[SagaExecutionModel.__table__])
    ddl = str(CreateTable(SagaLogModel.__table__).compile(conn))
    conn.exec_driver_sql(ddl.replace("\tid BIGINT NOT NULL", "\tid INTEGER NOT NULL", 1))


class StepContainer:
    """The smallest python-cqrs container: stateless steps (each saga's state is its context),
    one instance each over one shared HTTP client."""

    def __init__(self, client: httpx.AsyncClient, step_types: Iterable[type[Any]]) -> None:
        self._client = client
        self._steps = {step_type: step_type(client) for step_type in step_types}

    @property
    def external_container(self) -> httpx.AsyncClient:  # the Container protocol's
        return self._client

    def attach_external_container(self, container: httpx.AsyncClient) -> None:
        self._client = container

    async def resolve(self, type_: type[Any]) -> Any:
        return self._steps[type_]


#: One saga of a load, run to its end over (the steps, the storage); answers its outcome.
RunSaga = Callable[[StepContainer, Any], Awaitable[str]]


async def run_to_end(saga: Any, ctx: Any, steps: StepContainer, storage: Any, saga_id: Any) -> None:
    """`Saga.transaction`, every step run (the engine under `SagaMediator`, less event
    dispatch); raises what a failed step raised, once its compensations ran."""
    async with saga.transaction(ctx, steps, storage, saga_id) as tx:
        async for _ in tx:
            pass


async def drive(
    url: str,
    db: Path,
    *,
    concurrency: int,
    server_pid: int,
    step_types: Iterable[type[Any]],
    sagas: Sequence[RunSaga],
    outcomes: Iterable[str],
) -> dict[str, float]:
    """Run `sagas`, `concurrency` at a time, on a fresh `SqlAlchemySagaStorage` in `db`: the
    `LoadFigures` keys, each of `outcomes` counted, `log_entries_per_saga` (rows of its
    `saga_logs`) and `log_commits_per_saga` (its SQLAlchemy engine's commits)."""
    from cqrs.saga.storage.sqlalchemy import SagaLogModel, SqlAlchemySagaStorage
    from sqlalchemy import event, func, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    # Busy timeout 5 s -> 60 s: at c=32 writers queue on SQLite's lock with a p99 near 5 s, and
    # one "database is locked" would abort the whole bench.
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}", connect_args={"timeout": 60})
    async with engine.begin() as conn:
        await conn.run_sync(_create_schema)
    commits = 0

    def count_commit(_: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine.sync_engine, "commit", count_commit)
    storage = SqlAlchemySagaStorage(async_sessionmaker(engine, expire_on_commit=False))
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    counts = dict.fromkeys(outcomes, 0)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        steps = StepContainer(client, step_types)

        async def one(run: RunSaga) -> None:
            async with gate:
                start = time.perf_counter()
                counts[await run(steps, storage)] += 1
                latencies.append(time.perf_counter() - start)

        server0, client0, wall0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(run) for run in sagas))
        wall = time.perf_counter() - wall0
        client_cpu, server_cpu = time.process_time() - client0, cpu_seconds(server_pid) - server0
    async with engine.connect() as conn:
        entries = (await conn.execute(select(func.count()).select_from(SagaLogModel))).scalar_one()
    await engine.dispose()
    n = len(sagas)
    return {
        **vars(LoadFigures.of(latencies, wall, client_cpu, server_cpu)),
        **{name: float(count) for name, count in counts.items()},
        "log_entries_per_saga": entries / n,
        "log_commits_per_saga": commits / n,
    }


async def _transfers(
    url: str, db: Path, plan: list[tuple[str, str, int]], concurrency: int, server_pid: int
) -> dict[str, float]:
    import cqrs
    from cqrs.saga.models import SagaContext

    @dataclasses.dataclass
    class TransferContext(SagaContext):
        transaction_id: str
        source: str
        target: str
        amount: int
        compensated: bool = False
        debit_refused: bool = False

    class Step(cqrs.SagaStepHandler[TransferContext, None]):
        forward, undo, side = "", "", ""

        def __init__(self, client: httpx.AsyncClient) -> None:
            self._client = client

        async def _post(self, path: str, ctx: TransferContext) -> None:
            r = await self._client.post(
                path,
                json={"account_id": getattr(ctx, self.side), "amount": ctx.amount},
                headers={"transaction-id": ctx.transaction_id},
            )
            r.raise_for_status()  # a 5xx injected fault or a 4xx rejection fails the step

        async def act(self, ctx: TransferContext) -> cqrs.SagaStepResult[TransferContext, None]:
            try:
                await self._post(self.forward, ctx)
            except httpx.HTTPStatusError as e:
                if self.forward == "/debit" and e.response.is_client_error:
                    ctx.debit_refused = True  # a definite refusal: nothing happened
                raise
            return self._generate_step_result(None)

        async def compensate(self, ctx: TransferContext) -> None:
            await self._post(self.undo, ctx)
            ctx.compensated = True

    class DebitSource(Step):
        forward, undo, side = "/debit", "/compensate_debit", "source"

    class CreditTarget(Step):
        forward, undo, side = "/credit", "/void_credit", "target"

    class TransferSaga(cqrs.Saga[TransferContext]):
        steps = [DebitSource, CreditTarget]  # noqa: RUF012 - python-cqrs declares it a ClassVar

    saga = TransferSaga()

    def transfer(source: str, target: str, amount: int) -> RunSaga:
        async def run(steps: StepContainer, storage: Any) -> str:
            saga_id = uuid.uuid4()
            ctx = TransferContext(str(saga_id), source, target, amount)
            try:
                await run_to_end(saga, ctx, steps, storage, saga_id)
            except httpx.HTTPStatusError as e:
                if ctx.compensated:
                    return "compensated"
                if ctx.debit_refused:
                    return "rejected"
                # a failed compensation: the bench's figures would mean nothing
                raise RuntimeError(f"saga {saga_id} failed uncompensated: {e}") from e
            return "completed"

        return run

    return await drive(
        url,
        db,
        concurrency=concurrency,
        server_pid=server_pid,
        step_types=(DebitSource, CreditTarget),
        sagas=[transfer(*p) for p in plan],
        outcomes=("completed", "compensated", "rejected"),
    )


def accounts_env(tmp: Path, seed: int, balance: int | None) -> dict[str, str]:
    """The account service python-cqrs drives (`--role accounts`, which also hosts the inventory
    and the orders services): the same faults as sagabank's (`scenarios.server_env`)."""
    env = {
        "SAGABANK_DATABASE_URL": f"sqlite:///{tmp / 'bank.db'}",
        "SAGABANK_CREDIT_FAILURE_RATE": "0.3",
        "SAGABANK_FAULT_SEED": str(seed),
        "SAGABANK_LOG_LEVEL": "WARNING",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",  # python-cqrs's client sends no token
    }
    if balance is not None:
        env["SAGABANK_DEMO_BALANCE"] = str(balance)
    return env


def require_cqrs() -> None:
    if not all(find_spec(m) for m in ("cqrs", "sqlalchemy", "aiosqlite")):
        raise RuntimeError("python-cqrs is not installed: pip install -e '.[bench]'")


def cqrs_transfers(
    *, n: int, concurrency: int, seed: int, balance: int | None = None
) -> dict[str, float]:
    """`drive`'s figures for n python-cqrs transfer sagas (`completed`, `compensated` and
    `rejected` counted). `balance`: each demo account's opening balance (the service's default
    if None)."""
    require_cqrs()
    with tempfile.TemporaryDirectory(prefix="sagabank-bench-cqrs-") as tmp:
        env = accounts_env(Path(tmp), seed, balance)
        with ServiceProcess(env=env, role="accounts") as server:
            assert server.proc is not None
            db, plan = Path(tmp) / "cqrs-sagas.db", transfer_plan(n, seed)
            return asyncio.run(_transfers(server.url, db, plan, concurrency, server.proc.pid))
