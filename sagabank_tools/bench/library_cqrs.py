"""The library bench's python-cqrs side (`library.py`): python-cqrs's docs' order saga, one
`SagaStepHandler` per step calling the same `Services` methods under the same keys as the
library's example, on its `SqlAlchemySagaStorage` on SQLite, set up as `cqrs_saga.drive` does.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from repository_after.library import Refused
from repository_after.library.examples.order import OrderParams
from sagabank_tools.bench.library_load import Services, figures, load


async def cqrs_run(
    tmp: Path, services: Services, plan: list[OrderParams], concurrency: int
) -> dict[str, float]:
    from sagabank_tools.bench.cqrs_saga import _create_schema, require_cqrs, run_to_end

    require_cqrs()  # the `bench` extra, said so before the imports fail
    import cqrs
    from cqrs.saga.models import SagaContext
    from cqrs.saga.storage.sqlalchemy import SagaLogModel, SqlAlchemySagaStorage
    from sqlalchemy import event, func, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

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

    latencies, wall, cpu, counts = await load(plan, concurrency, one)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(SagaLogModel))).scalar_one()
    await engine.dispose()
    return figures(latencies, wall, cpu, counts, rows, commits)


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
