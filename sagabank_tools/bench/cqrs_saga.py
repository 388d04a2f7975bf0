"""python-cqrs's saga engine on its durable SQLite storage driving the same account service, over
loopback HTTP, as `scenarios.http_transfers` (same env, 30 % credit faults, the same seeded plan
(`plan.py`)).

Each transfer is a `Saga.transaction` (the engine under `SagaMediator`, less event dispatch):
`/debit` (undo `/compensate_debit`), then `/credit`, the saga id as `transaction-id`. A non-2xx
raises, so a faulted credit is compensated (python-cqrs never retries a step), and a debit the
account service refuses (4xx, e.g. insufficient funds) ends the saga rejected, with nothing to
undo. Its log is its `SqlAlchemySagaStorage` on `sqlite+aiosqlite` with SQLite's defaults
(rollback journal, synchronous=FULL: ~5-6 fsynced commits a saga) and SQLAlchemy's default pool,
bar an auto-numbered `saga_logs.id` (`_create_schema`: needed to run at all) and a 60 s busy
timeout (see below). Client CPU is this whole process (engine, SQLite threads, httpx); server CPU
the service's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
import uuid
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


async def _drive(
    url: str, db: Path, plan: list[tuple[str, str, int]], concurrency: int, server_pid: int
) -> dict[str, float]:
    import cqrs
    from cqrs.saga.models import SagaContext
    from cqrs.saga.storage.sqlalchemy import SqlAlchemySagaStorage
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

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

    class Steps:  # the smallest python-cqrs container: stateless steps, one instance each
        def __init__(self, client: httpx.AsyncClient) -> None:
            self._client = client
            self._steps: dict[type, Step] = {k: k(client) for k in (DebitSource, CreditTarget)}

        @property
        def external_container(self) -> httpx.AsyncClient:  # the Container protocol's
            return self._client

        def attach_external_container(self, container: httpx.AsyncClient) -> None:
            self._client = container

        async def resolve(self, type_: type[Any]) -> Any:
            return self._steps[type_]

    # Busy timeout 5 s -> 60 s: at c=32 writers queue on SQLite's lock with a p99 near 5 s, and
    # one "database is locked" would abort the whole bench.
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}", connect_args={"timeout": 60})
    async with engine.begin() as conn:
        await conn.run_sync(_create_schema)
    storage = SqlAlchemySagaStorage(async_sessionmaker(engine, expire_on_commit=False))
    saga, gate = TransferSaga(), asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    outcomes = {"completed": 0, "compensated": 0, "rejected": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        container = Steps(client)

        async def one(source: str, target: str, amount: int) -> None:
            saga_id = uuid.uuid4()
            ctx = TransferContext(str(saga_id), source, target, amount)
            async with gate:
                start = time.perf_counter()
                try:
                    async with saga.transaction(ctx, container, storage, saga_id) as tx:
                        async for _ in tx:
                            pass
                    outcomes["completed"] += 1
                except httpx.HTTPStatusError as e:
                    if ctx.compensated:
                        outcomes["compensated"] += 1
                    elif ctx.debit_refused:
                        outcomes["rejected"] += 1
                    else:  # a failed compensation: the bench's figures would mean nothing
                        raise RuntimeError(f"saga {saga_id} failed uncompensated: {e}") from e
                latencies.append(time.perf_counter() - start)

        server0, client0, wall0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(*p) for p in plan))
        wall = time.perf_counter() - wall0
        client_cpu, server_cpu = time.process_time() - client0, cpu_seconds(server_pid) - server0
    await engine.dispose()
    figures = vars(LoadFigures.of(latencies, wall, client_cpu, server_cpu))
    return {**figures, **{k: float(v) for k, v in outcomes.items()}}


def cqrs_transfers(
    *, n: int, concurrency: int, seed: int, balance: int | None = None
) -> dict[str, float]:
    """`LoadFigures` keys for n python-cqrs transfer sagas, plus `completed`, `compensated` and
    `rejected`. `balance`: each demo account's opening balance (the service's default if None)."""
    if not all(find_spec(m) for m in ("cqrs", "sqlalchemy", "aiosqlite")):
        raise RuntimeError("python-cqrs is not installed: pip install -e '.[bench]'")

    with tempfile.TemporaryDirectory(prefix="sagabank-bench-cqrs-") as tmp:
        env = {
            "SAGABANK_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bank.db'}",
            "SAGABANK_CREDIT_FAILURE_RATE": "0.3",
            "SAGABANK_FAULT_SEED": str(seed),
            "SAGABANK_LOG_LEVEL": "WARNING",
            "SAGABANK_ADMIN_TOKEN": "",
            "SAGABANK_SERVICE_TOKEN": "",  # python-cqrs's client sends no token
        }
        if balance is not None:
            env["SAGABANK_DEMO_BALANCE"] = str(balance)
        with ServiceProcess(env=env, role="accounts") as server:
            assert server.proc is not None
            db, plan = Path(tmp) / "cqrs-sagas.db", transfer_plan(n, seed)
            return asyncio.run(_drive(server.url, db, plan, concurrency, server.proc.pid))
