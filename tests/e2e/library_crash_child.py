"""The process the saga library's crash test kills: runs one example order, SIGKILLing itself
at boundary N (env `LIBRARY_KILL_AT`).

    python -m tests.e2e.library_crash_child DIR SCENARIO

Boundaries, counted in the order they happen: before and after every call to the order's
services (each action, compensation and settlement: after = its effect is committed, the engine
has not heard of it) and before and after every saga-log write (after = durably committed, the
driver has not gone on). Without `LIBRARY_KILL_AT` the run completes and writes every boundary's
label to DIR/boundaries.json (the shape the test kills along); with it, the child writes the
label of boundary N to DIR/killed, fsynced, and kills itself with SIGKILL there.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.domain.saga import SagaEvent
from repository_after.library import SagaRunner
from repository_after.library.examples.order import OrderParams, example_orders, order_saga
from repository_after.library.examples.order_services import OrderServices

#: scenario -> the example order it runs
SCENARIOS = {"shipped": 0, "no-address": 1, "declined": 2}


class Boundaries:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.kill_at = int(os.environ.get("LIBRARY_KILL_AT", "0"))
        self.labels: list[str] = []

    def cross(self, label: str) -> None:
        self.labels.append(label)
        if len(self.labels) == self.kill_at:
            with open(self.directory / "killed", "w") as f:
                f.write(label)
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)


class KillingServices(OrderServices):
    boundaries: Boundaries

    def _around(self, name: str, call: Any) -> Any:
        self.boundaries.cross(f"before {name}")
        result = call()
        self.boundaries.cross(f"after {name}")
        return result

    def reserve_items(self, **kw: Any) -> str:
        return self._around(
            "reserve_items", lambda: super(KillingServices, self).reserve_items(**kw)
        )

    def release_items(self, **kw: Any) -> None:
        self._around("release_items", lambda: super(KillingServices, self).release_items(**kw))

    def charge(self, **kw: Any) -> str:
        return self._around("charge", lambda: super(KillingServices, self).charge(**kw))

    def refund(self, **kw: Any) -> None:
        self._around("refund", lambda: super(KillingServices, self).refund(**kw))

    def create_shipment(self, **kw: Any) -> str:
        return self._around(
            "create_shipment", lambda: super(KillingServices, self).create_shipment(**kw)
        )

    def shipped(self, **kw: Any) -> bool:
        return self._around("shipped", lambda: super(KillingServices, self).shipped(**kw))


class KillingLog(SqliteSagaLog):
    boundaries: Boundaries

    async def create(self, **kw: Any) -> Any:
        self.boundaries.cross("before log create")
        lease = await super().create(**kw)
        self.boundaries.cross("after log create")
        return lease

    async def append(self, saga_id: str, events: Sequence[SagaEvent], **kw: Any) -> None:
        what = ",".join(f"{e.kind.value}:{e.step or ''}:{e.role or ''}" for e in events)
        self.boundaries.cross(f"before log append [{what}]")
        await super().append(saga_id, events, **kw)
        self.boundaries.cross(f"after log append [{what}]")


def order_of(scenario: str) -> OrderParams:
    return example_orders()[SCENARIOS[scenario]]


async def main(directory: Path, scenario: str) -> None:
    boundaries = Boundaries(directory)
    services = KillingServices(directory / "services.db")
    services.boundaries = boundaries
    log = KillingLog(directory / "sagas.db")
    log.boundaries = boundaries
    order = order_of(scenario)
    async with SagaRunner([order_saga(services)], log=log, observers=()) as runner:
        view = await runner.run("order", order, saga_id=order.order_id)
    services.close()
    (directory / "boundaries.json").write_text(
        json.dumps({"status": view.status, "labels": boundaries.labels})
    )


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
