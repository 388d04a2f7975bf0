"""python-cqrs's order saga, in the saga library: reserve inventory, process payment, ship.

The saga of python-cqrs's documentation (`SagaStepHandler`s `ReserveInventoryStep`,
`ProcessPaymentStep`, `ShipOrderStep` over an `OrderContext`), written as callables:

| step | compensation | kind | python-cqrs |
|---|---|---|---|
| reserve_inventory | release_inventory | compensatable | same |
| process_payment | refund_payment | compensatable | same |
| ship_order | (settled by `shipped`) | pivot | compensatable (no pivot there) |

Each callable receives the order's typed parameters (`OrderParams`, python-cqrs's context less
the ids the steps fill in) and the results of the earlier steps, which replace the ids python-cqrs
writes onto its context. Shipping is the point of no return: a refused shipment (no address)
refunds the payment and releases the stock, last first; a shipment whose outcome stays unknown
is settled by asking the shipping service (`shipped`), never guessed. Every effect is recorded
under the step's key (`order_services.py`), so a step called again after a crash does nothing
twice.

    python -m repository_after.library.examples.order [--dir DIR]

runs three orders (shipped; no address: compensated; card declined: compensated) on a SQLite
saga log and services file in DIR, and prints each saga and every effect.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, Field

from repository_after.library import Saga, SagaRunner, SagaView, StepContext
from repository_after.library.examples.order_services import OrderServices


class Item(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


class OrderParams(BaseModel):
    order_id: str
    user_id: str
    items: list[Item]
    total_amount: int = Field(gt=0, description="minor units")
    shipping_address: str


Ctx = StepContext[OrderParams]


def order_saga(services: OrderServices) -> Saga[OrderParams]:
    """The order saga over `services` (the callables close over them)."""
    saga: Saga[OrderParams] = Saga("order", params=OrderParams)

    async def release_inventory(ctx: Ctx) -> None:
        services.release_items(key=ctx.key)

    async def refund_payment(ctx: Ctx) -> None:
        services.refund(key=ctx.key)

    async def shipped(ctx: Ctx) -> bool:
        return services.shipped(key=ctx.key)

    @saga.step(compensate=release_inventory)
    async def reserve_inventory(ctx: Ctx) -> dict[str, str]:
        items = json.dumps([item.model_dump() for item in ctx.params.items])
        reservation = services.reserve_items(key=ctx.key, order_id=ctx.params.order_id, items=items)
        return {"reservation_id": reservation}

    @saga.step(compensate=refund_payment)
    async def process_payment(ctx: Ctx) -> dict[str, str]:
        p = ctx.params
        payment = services.charge(key=ctx.key, user_id=p.user_id, amount=p.total_amount)
        return {"payment_id": payment}

    @saga.step(settle=shipped)
    async def ship_order(ctx: Ctx) -> dict[str, str]:
        shipment = services.create_shipment(key=ctx.key, address=ctx.params.shipping_address)
        return {
            "shipment_id": shipment,
            "reservation_id": ctx.results["reserve_inventory"]["reservation_id"],
            "payment_id": ctx.results["process_payment"]["payment_id"],
        }

    return saga


def example_orders() -> list[OrderParams]:
    """Shipped; no shipping address (refused at the pivot); card declined (at the payment)."""
    item = Item(sku="book-42", quantity=2)
    return [
        OrderParams(
            order_id=order_id,
            user_id="ada",
            items=[item],
            total_amount=amount,
            shipping_address=address,
        )
        for order_id, amount, address in (
            ("order-1", 4_200, "12 Analytical Row"),
            ("order-2", 4_200, ""),
            ("order-3", 900_000, "12 Analytical Row"),
        )
    ]


async def run_examples(directory: Path) -> list[SagaView]:
    """Run (or, in a directory used before, rejoin) the example orders; their views."""
    services = OrderServices(directory / "services.db")
    try:
        async with SagaRunner([order_saga(services)], log=directory / "sagas.db") as runner:
            await runner.recover()  # whatever a crashed run left
            return [
                await runner.run("order", order, saga_id=order.order_id)
                for order in example_orders()
            ]
    finally:
        services.close()


def describe(view: SagaView) -> list[str]:
    steps = ", ".join(
        f"{s.name}={s.action}" + (f"/undone:{s.compensation}" if s.compensation else "")
        for s in view.steps
        if s.action
    )
    return [f"{view.saga_id}: {view.status} ({steps})", f"  results: {view.results}"]


def main(
    directory: Annotated[Path, typer.Option("--dir", help="where the two SQLite files go")] = Path(
        "order-example"
    ),
) -> None:
    """Run the worked example and print what happened."""
    directory.mkdir(parents=True, exist_ok=True)
    views = asyncio.run(run_examples(directory))
    for view in views:
        for line in describe(view):
            typer.echo(line)
    services = OrderServices(directory / "services.db")
    typer.echo("effects, in order:")
    for kind, key, detail in services.effects():
        typer.echo(f"  {kind:8} {key:32} {detail}")
    services.close()


if __name__ == "__main__":
    typer.run(main)
