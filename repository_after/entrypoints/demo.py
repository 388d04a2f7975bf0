"""`sagabank demo`: the command line of every demo, and which module runs which saga's.

One module per saga type runs its demo (`transfer_demo`, the default; `order_demo`;
`classes_demo`; `abc_demo`), each with a `run(DemoRequest)`; `RUNNERS` picks it by `--saga`, and
`--mode choreography` hands the transfer and the order saga to `choreo_demo` instead. The seam is
there so that a new saga's demo is a new module and a row of `RUNNERS` (with its own options
here, if it needs any), not another branch of this command; what the in-process demos share
(resuming a killed run, driving a plan, the final report and exit status) is `demo_support`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from repository_after.config import SagaMode
from repository_after.domain.abc import ABC
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.order import ORDER
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints import (
    abc_demo,
    choreo_demo,
    classes_demo,
    order_demo,
    transfer_demo,
)
from repository_after.entrypoints.classes_demo import MAX_ASSIGNMENTS
from repository_after.entrypoints.demo_support import DemoRequest
from repository_after.entrypoints.order_demo import MAX_ORDERS
from repository_after.service_layer.faults import FaultMode


class DemoSaga(StrEnum):
    TRANSFER = TRANSFER.name
    ORDER = ORDER.name
    CLASSES = CLASS_ASSIGNMENT.name
    ABC = ABC.name


#: Each saga's demo, by `--saga`.
RUNNERS: dict[DemoSaga, Callable[[DemoRequest], None]] = {
    DemoSaga.TRANSFER: transfer_demo.run,
    DemoSaga.ORDER: order_demo.run,
    DemoSaga.CLASSES: classes_demo.run,
    DemoSaga.ABC: abc_demo.run,
}


def demo(
    saga: Annotated[
        DemoSaga,
        typer.Option(
            help="transfers between the demo accounts, orders over the account, inventory "
            "and orders services (started as three processes), group assignments over the "
            "pupils and classes services, or the A → B → C failure table over services A, B "
            "and C and an orchestrator (four processes)"
        ),
    ] = DemoSaga.TRANSFER,
    transfers: Annotated[int, typer.Option(min=1, max=1_000_000, help="transfers to run")] = 100,
    orders: Annotated[
        int, typer.Option(min=1, max=MAX_ORDERS, help="orders to run (--saga order)")
    ] = 100,
    assignments: Annotated[
        int,
        typer.Option(min=1, max=MAX_ASSIGNMENTS, help="group assignments to run (--saga classes)"),
    ] = 60,
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="sagas in flight at once")] = 8,
    fault_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="share of credits (and of the inventory's reserve and release, for orders; of "
            "assign, unassign and enrol, for classes) the started services fail",
        ),
    ] = 0.3,
    fault_mode: Annotated[
        FaultMode | None,
        typer.Option(
            help="a failed call is not applied (before), applied with its answer lost "
            "(after), or either (mixed); default: before for transfers, mixed for orders",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the plan and of the faults")] = 42,
    retries: Annotated[int, typer.Option(min=0, max=50, help="retries of an unknown outcome")] = 0,
    max_amount: Annotated[
        int, typer.Option(min=1, help="largest transfer, in minor units (cents)")
    ] = 30_000,
    accounts_url: Annotated[
        str | None,
        typer.Option(help="use this account service instead of starting one (transfers only)"),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            help="where the saga log (and the started service's books) are kept; "
            "SAGABANK_DATABASE_URL, if set, names the database instead"
        ),
    ] = Path("data"),
    json_output: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    fail: Annotated[
        list[str] | None,
        typer.Option(
            help="--saga abc: a row of the failure table to run (none, A:refuse, B:unknown, "
            "C:slow, C:unknown_after:once, ..., or all; repeatable); default: none and A, B, C "
            "refusing",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        list[str] | None,
        typer.Option(
            help="--saga abc: the services' databases, one URL with {service} in it "
            "(mysql://root@127.0.0.1:3306/abc_{service}) or three; --mode choreography: the "
            "deployment's database (postgresql://...); default: SQLite files in --data-dir",
            show_default=False,
        ),
    ] = None,
    saga_mode: Annotated[
        SagaMode,
        typer.Option(
            "--mode",
            help="orchestrated over HTTP, or choreographed over RabbitMQ (SAGABANK_BROKER_URL; "
            "one `sagabank serve --mode choreography`, no faults injected)",
        ),
    ] = SagaMode.ORCHESTRATION,
) -> None:
    """Run transfers (or orders) as sagas and check that money (and stock) is conserved."""
    logging.basicConfig(level=logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    if saga_mode is SagaMode.CHOREOGRAPHY:
        if saga in (DemoSaga.CLASSES, DemoSaga.ABC):
            raise typer.BadParameter(
                "the choreographed demo runs the transfer and the order saga", param_hint="--mode"
            )
        choreo_demo.main(
            saga=saga.value,
            count=orders if saga is DemoSaga.ORDER else transfers,
            seed=seed,
            concurrency=concurrency,
            data_dir=data_dir,
            json_output=json_output,
            max_amount=max_amount,
            database_url=_one(database_url, "--mode choreography runs on one database"),
        )
        return
    request = DemoRequest(
        transfers=transfers,
        orders=orders,
        assignments=assignments,
        concurrency=concurrency,
        fault_rate=fault_rate,
        fault_mode=fault_mode,
        seed=seed,
        retries=retries,
        max_amount=max_amount,
        accounts_url=accounts_url,
        data_dir=data_dir,
        json_output=json_output,
        fail=fail or [],
        database_url=database_url or [],
    )
    RUNNERS[saga](request)


def _one(urls: list[str] | None, why: str) -> str | None:
    if not urls:
        return None
    if len(urls) > 1:
        raise typer.BadParameter(why, param_hint="--database-url")
    return urls[0]
