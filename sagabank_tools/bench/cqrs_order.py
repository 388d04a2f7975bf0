"""The order saga on python-cqrs's saga engine, against the same participant services as
sagabank's (`orders`), over loopback HTTP, on its durable `SqlAlchemySagaStorage` on SQLite, as
`cqrs_saga` runs transfers (`drive`: same storage set-up, same 30 % credit faults, the same
seeded plan, `plan.order_plan`). Needs the `bench` extra; `cqrs_saga.require_cqrs` says so.

Modelled on python-cqrs's docs' order example (https://mkdocs.python-cqrs.dev/saga/examples,
"Basic Saga Example": an `OrderContext(SagaContext)` dataclass, one `SagaStepHandler` per step
with `act` and `compensate`, `class OrderSaga(Saga[OrderContext])` listing the steps; the full
`examples/saga.py` of vadikko2/python-cqrs reserves inventory, processes the payment and ships),
here with the six steps of sagabank's order saga (domain/order.py), each a call to the service
that sagabank's orchestrator calls for it, with the same body:

| step | act | compensate |
|---|---|---|
| CreateOrder | `/orders/create` | `/orders/cancel` |
| ReserveStock | `/inventory/reserve` (keeps the `reservation_id`) | `/inventory/release` |
| ChargeCustomer | `/debit` (the customer) | `/compensate_debit` |
| PayMerchant | `/credit` (the merchant) | `/void_credit`; `already_applied` raises |
| SellStock | `/inventory/sell` | nothing: the inventory offers no undo |
| ConfirmOrder | `/orders/confirm` | nothing: the orders service offers no undo |

Every call of a step (its action and its compensation) is keyed as sagabank keys it
(`order_books.step_key`: `<saga id>:<step>`, but the saga id alone for the charge and the
payment), the saga id being python-cqrs's UUID.

What python-cqrs does, precisely, and where it differs from sagabank:
- It never retries a step: a failed call (a non-2xx, e.g. an injected 500 on the payment) fails
  the saga at once, and the steps that completed are compensated, last first; a compensation is
  retried up to 3 times, 1 s then 2 s apart (its defaults). None fails here.
- It never settles the step that failed: a payment answered 500 is taken as not made, and the
  charge, the reservation and the order are undone. With the bench's faults (the credit fails
  before anything changes) that is right; had the credit landed and its answer been lost, the
  customer would be refunded while the merchant keeps the money. sagabank first asks
  `void_credit`, which fences or confirms the credit: one call and two log writes more for each
  faulted order.
- It has no pivot or retriable step: a failure after the payment would "compensate" it with
  `void_credit`, which cannot take an applied credit back (`already_applied`: raised here, and
  the run stops). Sell and confirm fail in no run of the bench (reserved stock, no faults there).
- Its log: `create` and `RUNNING` committed; then per step a STARTED row, the call, the context
  and a COMPLETED row, committed together AFTER the call, so no intent is on disk before a call
  (a crash mid-call leaves no trace of it); compensation logs and commits each step's undo.
  sagabank logs each intent before its call. `drive` counts the rows and the commits.
- It runs in the load's own process: no HTTP hop into the engine, whose CPU is client CPU here.

A saga ends `completed`, or `compensated` when a step failed and every completed step was undone;
anything else stops the run (its figures would mean nothing). The books are audited after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import uuid
from pathlib import Path
from typing import Any, ClassVar

import cqrs
import httpx
from cqrs.saga.models import SagaContext

from repository_after.entrypoints.service_process import ServiceProcess
from sagabank_tools.bench.cqrs_saga import (
    RunSaga,
    StepContainer,
    accounts_env,
    drive,
    require_cqrs,
    run_to_end,
)
from sagabank_tools.bench.order_books import OUTCOMES, audit, open_stock, step_key, with_audit
from sagabank_tools.bench.plan import ORDER_BALANCE, order_plan
from sagabank_tools.bench.scenarios import server_pid


@dataclasses.dataclass
class OrderContext(SagaContext):
    saga_id: str
    order: dict[str, Any]  # the order saga's parameters (`PlannedOrder.body`)
    reservation_id: str | None = None
    done: list[str] = dataclasses.field(default_factory=list)  # steps acted
    undone: list[str] = dataclasses.field(default_factory=list)  # steps compensated


class OrderStep(cqrs.SagaStepHandler[OrderContext, None]):
    step: ClassVar[str]  # its name in sagabank's order saga: its calls' key
    action: ClassVar[str]
    undo: ClassVar[str | None] = None

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        raise NotImplementedError

    async def _post(self, path: str, ctx: OrderContext) -> dict[str, Any]:
        key = step_key(ctx.saga_id, self.step)
        answer = await self._client.post(path, json=self.body(ctx), headers={"transaction-id": key})
        answer.raise_for_status()  # a 5xx injected fault or a 4xx refusal fails the step
        body: dict[str, Any] = answer.json()
        return body

    async def act(self, ctx: OrderContext) -> cqrs.SagaStepResult[OrderContext, None]:
        answer = await self._post(self.action, ctx)
        ctx.reservation_id = answer.get("reservation_id", ctx.reservation_id)
        ctx.done.append(self.step)
        return self._generate_step_result(None)

    async def compensate(self, ctx: OrderContext) -> None:
        if self.undo is not None:
            answer = await self._post(self.undo, ctx)
            if answer["status"] == "already_applied":
                raise RuntimeError(f"{self.step}: applied, and not taken back by {self.undo}")
        ctx.undone.append(self.step)


class CreateOrder(OrderStep):
    step, action, undo = "create", "/orders/create", "/orders/cancel"

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        return ctx.order


class ReserveStock(OrderStep):
    step, action, undo = "reserve", "/inventory/reserve", "/inventory/release"

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        return {"lines": ctx.order["lines"]}


class ChargeCustomer(OrderStep):
    step, action, undo = "charge", "/debit", "/compensate_debit"

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        return {"account_id": ctx.order["customer"], "amount": ctx.order["total"]}


class PayMerchant(OrderStep):
    step, action, undo = "pay", "/credit", "/void_credit"

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        return {"account_id": ctx.order["merchant"], "amount": ctx.order["total"]}


class SellStock(OrderStep):
    step, action = "sell", "/inventory/sell"

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        return {"reservation_id": ctx.reservation_id}


class ConfirmOrder(OrderStep):
    step, action = "confirm", "/orders/confirm"

    def body(self, ctx: OrderContext) -> dict[str, Any]:
        return {"order_id": ctx.order["order_id"]}


STEPS = (CreateOrder, ReserveStock, ChargeCustomer, PayMerchant, SellStock, ConfirmOrder)


class OrderSaga(cqrs.Saga[OrderContext]):
    steps = list(STEPS)  # noqa: RUF012 - python-cqrs declares it a ClassVar


def order_saga(saga: OrderSaga, params: dict[str, object]) -> RunSaga:
    """One order: a fresh saga id; answers how it ended."""

    async def run(steps: StepContainer, storage: Any) -> str:
        saga_id = uuid.uuid4()
        ctx = OrderContext(str(saga_id), params)
        try:
            await run_to_end(saga, ctx, steps, storage, saga_id)
        except httpx.HTTPStatusError as e:
            if ctx.done and sorted(ctx.undone) == sorted(ctx.done):
                return "compensated"
            raise RuntimeError(f"order saga {saga_id} failed uncompensated: {e}") from e
        return "completed"

    return run


def cqrs_orders(*, n: int, concurrency: int, seed: int) -> dict[str, float]:
    """`drive`'s figures for n planned python-cqrs order sagas, with the books' audit
    (`order_books.with_audit`)."""
    require_cqrs()
    plan, saga = order_plan(n, seed), OrderSaga()
    sagas = [order_saga(saga, order.body()) for order in plan]
    with tempfile.TemporaryDirectory(prefix="sagabank-bench-cqrs-orders-") as tmp:
        env = accounts_env(Path(tmp), seed, ORDER_BALANCE)
        with ServiceProcess(env=env, role="accounts") as server:
            asyncio.run(open_stock(server.url))
            figures = asyncio.run(
                drive(
                    server.url,
                    Path(tmp) / "cqrs-sagas.db",
                    concurrency=concurrency,
                    server_pid=server_pid(server),
                    step_types=STEPS,
                    sagas=sagas,
                    outcomes=OUTCOMES,
                )
            )
            violations = asyncio.run(audit(server.url, [o.order_id for o in plan]))
    return with_audit(figures, violations)
