"""What differs between the saga types a chaos run drives: the plan, the routes, the checks.

The runner (`runner.py`) drives every mode the same way: `prepare` before the load, the load
POSTed to `start_path`, each saga polled at `view_path` and a parked one retried at
`retry_path`, `read_live` once the proxy drained (the services still up), `check` once they
stopped (their databases quiet). A mode is built per run (`mode_for`) and holds its plan.

- `TransferMode` (`--saga transfer`, the default): `/transfers`; its check matches every saga
  with the account service's operation records (`records.py`).
- `OrderMode` (`--saga order`): `/sagas/order` and the generic `/sagas/order/{id}` routes; it
  opens the plan's stock first (`POST /inventory/stock` with the service token); its checks are
  the order audit (`service_layer.order_audit`) and every saga against the three services'
  records (`order_records.py`).
The account service's own audit is read by the runner for both, and reported unfiltered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from repository_after.service_layer.order_audit import OrderBooks, audit_orders
from sagabank_tools.chaos import load, order_records, records
from sagabank_tools.chaos.cluster import Databases
from sagabank_tools.chaos.order_plan import plan_orders
from sagabank_tools.chaos.report import ChaosReport

Statuses = Mapping[str, str]  # saga id -> its final status


class Mode:
    saga = ""
    start_path = ""
    #: Calls the account service's process must refuse without the service token (401): ids
    #: no saga uses, and compensations, so that were one taken it would leave a tombstone only.
    probes: tuple[str, ...] = ("/void_credit",)
    planned: Sequence[load.Planned] = ()

    def view_path(self, saga_id: str) -> str:
        return f"/sagas/{self.saga}/{saga_id}"

    def retry_path(self, saga_id: str) -> str:
        return f"{self.view_path(saga_id)}/retry"

    async def prepare(self, service: httpx.AsyncClient) -> None:
        """Before the load, on the account service's process (with the service token)."""

    async def read_live(self, service: httpx.AsyncClient) -> None:
        """After the drain, while the services still run."""

    def check(self, report: ChaosReport, statuses: Statuses, databases: Databases) -> None:
        """After the services stopped: fills the report's mode-specific findings."""
        raise NotImplementedError


class TransferMode(Mode):
    saga = "transfer"
    start_path = "/transfers"

    def __init__(self, seed: int, count: int) -> None:
        self.planned = load.plan(seed, count)

    def view_path(self, saga_id: str) -> str:
        return f"/transfers/{saga_id}"

    def check(self, report: ChaosReport, statuses: Statuses, databases: Databases) -> None:
        ops = records.read_operations(databases.accounts)
        report.record_mismatches = records.mismatches(statuses, ops)


class OrderMode(Mode):
    saga = "order"
    start_path = "/sagas/order"
    probes = ("/void_credit", "/inventory/release", "/orders/cancel")

    def __init__(self, seed: int, count: int) -> None:
        self.plan = plan_orders(seed, count)
        self.planned = self.plan.orders
        self._live: dict[str, Any] = {}

    async def prepare(self, service: httpx.AsyncClient) -> None:
        for sku, qty in self.plan.stock.items():
            opened = await service.post("/inventory/stock", json={"sku": sku, "qty": qty})
            opened.raise_for_status()

    async def read_live(self, service: httpx.AsyncClient) -> None:
        for name, path in (
            ("account_audit", "/audit"),
            ("stock", "/inventory/stock"),
            ("inventory_audit", "/inventory/audit"),
            ("orders_audit", "/orders/audit"),
        ):
            self._live[name] = (await service.get(path)).raise_for_status().json()

    def check(self, report: ChaosReport, statuses: Statuses, databases: Databases) -> None:
        held = order_records.read(
            accounts=databases.accounts, orders=databases.orders, inventory=databases.inventory
        )
        report.record_mismatches = order_records.mismatches(statuses, self.plan.orders, held)
        stock = self._live["stock"]["stock"]
        books = OrderBooks(
            # The account audit's findings are the report's own line (`audit_violations`), as
            # they stand; given here too, each would count twice.
            account_audit={**self._live["account_audit"], "violations": []},
            entries=held.entries,
            stock=stock,
            inventory_audit=self._live["inventory_audit"],
            reservations=held.reservations,
            orders=list(held.orders.values()),
            orders_audit=self._live["orders_audit"],
            sagas=statuses,
        )
        report.order_audit_violations = audit_orders(books)
        columns = ("opened", "available", "reserved", "sold")
        report.stock = {c: sum(int(row[c]) for row in stock) for c in columns}


def mode_for(saga: str, seed: int, count: int) -> Mode:
    modes: dict[str, type[TransferMode | OrderMode]] = {
        "transfer": TransferMode,
        "order": OrderMode,
    }
    return modes[saga](seed, count)
