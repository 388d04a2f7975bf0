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
- `ClassesMode` (`--saga classes`): `/sagas/classes`; it registers the plan's pupils and opens
  its classes first (`POST /pupils/pupils`, `POST /classes/classes`); its checks are the class
  audit (`service_layer.class_audit`, over both services' paged reads) and every saga against
  the two services' records (`classes_records.py`).
The account service's own audit is read by the runner for every mode, and reported unfiltered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from repository_after.adapters.http_class_books import ClassServices, read_class_books
from repository_after.service_layer.class_audit import ClassBooks, audit_classes
from repository_after.service_layer.order_audit import OrderBooks, audit_orders
from repository_after.services.pupils import MAX_REGISTER
from sagabank_tools.chaos import classes_records, load, order_records, records
from sagabank_tools.chaos.classes_plan import plan_classes
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


class ClassesMode(Mode):
    saga = "classes"
    start_path = "/sagas/classes"
    probes = ("/void_credit", "/pupils/unassign", "/classes/void_enrol")

    def __init__(self, seed: int, count: int) -> None:
        self.plan = plan_classes(seed, count)
        self.planned = self.plan.groups
        self._books: ClassBooks | None = None

    async def prepare(self, service: httpx.AsyncClient) -> None:
        pupils = list(self.plan.pupils)
        for start in range(0, len(pupils), MAX_REGISTER):
            batch = {"pupils": pupils[start : start + MAX_REGISTER]}
            (await service.post("/pupils/pupils", json=batch)).raise_for_status()
        for class_id, capacity in self.plan.classes.items():
            body = {"class_id": class_id, "capacity": capacity}
            (await service.post("/classes/classes", json=body)).raise_for_status()

    async def read_live(self, service: httpx.AsyncClient) -> None:
        url = str(service.base_url).rstrip("/")
        async with (
            httpx.AsyncClient(base_url=f"{url}/pupils", timeout=10.0) as pupils,
            httpx.AsyncClient(base_url=f"{url}/classes", timeout=10.0) as classes,
        ):
            self._books = await read_class_books(ClassServices(pupils, classes), sagas={})

    def check(self, report: ChaosReport, statuses: Statuses, databases: Databases) -> None:
        held = classes_records.read(pupils=databases.pupils, classes=databases.classes)
        report.record_mismatches = classes_records.mismatches(statuses, self.plan.groups, held)
        assert self._books is not None, "read_live runs before check"
        report.class_audit_violations = audit_classes(replace(self._books, sagas=statuses))
        rosters = {c["class_id"]: len(c["roster"]) for c in self._books.classes}
        report.stock = {
            "places": sum(self.plan.classes.values()),
            "enrolled": sum(rosters.get(c, 0) for c in self.plan.classes),
        }


def mode_for(saga: str, seed: int, count: int) -> Mode:
    modes: dict[str, type[TransferMode | OrderMode | ClassesMode]] = {
        "transfer": TransferMode,
        "order": OrderMode,
        "classes": ClassesMode,
    }
    return modes[saga](seed, count)
