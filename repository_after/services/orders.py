"""The orders service, a saga participant built on the participant kit.

Orders in their own database: a SQLite file by default, PostgreSQL by URL. Operations
(`participant_kit`: each recorded once per key in the same transaction as the order's change,
replayed, fenced by tombstones):
- `create` (action; body: `order_id`, `customer`, `merchant`, `lines` `[{"sku", "qty"}]`,
  `total` in minor units): the order is written `pending`; answer `{"status": "created",
  "order_id", "state": "pending"}`. An order id already taken (under another key) is the
  definite refusal 409 `order_exists`, and nothing changes.
- `cancel` (its compensation): a pending order becomes `cancelled`; answer `{"status":
  "cancelled", "order_id"}`. A confirmed order is refused, 409 `order_confirmed`. With no
  order created under the key it leaves the kit's tombstone `nothing_to_compensate`, which
  refuses a late `create` (409).
- `confirm` (a retriable step's action, after the payment; body `{"order_id"}`): a pending
  order becomes `confirmed`; a repeat under the same key replays (the kit). A cancelled order is
  409 `order_cancelled`, one confirmed under another key 409 `order_confirmed`, an unknown one
  409 `order_not_found`.
Plus `find_order` (with `created_key`: the key `create` ran under), `list_orders` (a page by
id) and `audit`, which its HTTP edge serves (`services.orders_http`).

Invariants (`audit`): no order is both confirmed and cancelled; every order was created by one
applied `create` (and every applied `create` has its order); pending ⇔ neither an applied
`cancel` nor an applied `confirm`; cancelled ⇔ one applied `cancel`, no `confirm`; confirmed ⇔
one applied `confirm`, no `cancel`. An order whose `create`, `cancel` or `confirm` record retention
purged counts against the purged totals (`participant_kit.retention.Unrecorded`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from repository_after.domain.ids import ACCOUNT_ID_PATTERN
from repository_after.entrypoints.schemas import AccountId, Amount
from repository_after.participant_kit import (
    Compensation,
    ParticipantService,
    ParticipantStore,
    Refusal,
    Tx,
)
from repository_after.participant_kit.records import applied_records
from repository_after.participant_kit.retention import Unrecorded
from repository_after.services.hosting import open_store
from repository_after.services.inventory import MAX_LINES, Line

MAX_LIST = 1000
STATES = ("pending", "confirmed", "cancelled")

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, created_key TEXT NOT NULL,"
    " customer TEXT NOT NULL, merchant TEXT NOT NULL,"
    " total BIGINT NOT NULL CHECK (total > 0),"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'cancelled')))",
    "CREATE TABLE IF NOT EXISTS order_lines (order_id TEXT NOT NULL"
    " REFERENCES orders (order_id), sku TEXT NOT NULL, position INTEGER NOT NULL,"
    " qty INTEGER NOT NULL CHECK (qty > 0), PRIMARY KEY (order_id, sku))",
)

OrderId = Annotated[
    StrictStr, Field(pattern=ACCOUNT_ID_PATTERN.pattern, description="1-64 of [A-Za-z0-9._:-]")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OrderIn(_Strict):
    """An order: who buys (`customer`, the account debited) from whom (`merchant`, the account
    credited), which lines (1..50, each SKU once), and the total in minor units."""

    order_id: OrderId
    customer: AccountId
    merchant: AccountId
    lines: Annotated[list[Line], Field(min_length=1, max_length=MAX_LINES)]
    total: Amount

    @model_validator(mode="after")
    def _distinct_skus(self) -> OrderIn:
        if len({line.sku for line in self.lines}) != len(self.lines):
            raise ValueError("each SKU appears once in an order's lines")
        return self


class ConfirmIn(_Strict):
    order_id: OrderId


def find_order(tx: Tx, order_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    rows = tx.execute(
        "SELECT order_id, created_key, customer, merchant, total, state FROM orders"
        " WHERE order_id = ?" + (tx.for_update if lock else ""),
        (order_id,),
    )
    if not rows:
        return None
    keys = ("order_id", "created_key", "customer", "merchant", "total", "state")
    order = dict(zip(keys, rows[0], strict=True))
    lines = tx.execute(
        "SELECT sku, qty FROM order_lines WHERE order_id = ? ORDER BY position", (order_id,)
    )
    order["lines"] = [{"sku": sku, "qty": qty} for sku, qty in lines]
    return order


def create(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    order_id = body["order_id"]
    if find_order(tx, order_id, lock=True) is not None:
        raise Refusal("order_exists", f"order {order_id!r} already exists")
    tx.execute(
        "INSERT INTO orders (order_id, created_key, customer, merchant, total, state)"
        " VALUES (?, ?, ?, ?, ?, 'pending')",
        (order_id, key, body["customer"], body["merchant"], body["total"]),
    )
    for position, line in enumerate(body["lines"]):
        tx.execute(
            "INSERT INTO order_lines (order_id, sku, position, qty) VALUES (?, ?, ?, ?)",
            (order_id, line["sku"], position, line["qty"]),
        )
    return {"status": "created", "order_id": order_id, "state": "pending"}


def _move(tx: Tx, order_id: str, state: str) -> None:
    tx.execute("UPDATE orders SET state = ? WHERE order_id = ?", (state, order_id))


def cancel(tx: Tx, _key: str, created: dict[str, Any]) -> dict[str, Any]:
    """Compensation of `create`: `created` is create's recorded answer."""
    order_id = created["order_id"]
    order = find_order(tx, order_id, lock=True)
    assert order is not None  # create wrote it in the transaction that recorded its answer
    if order["state"] == "confirmed":
        raise Refusal("order_confirmed", f"order {order_id!r} is confirmed")
    _move(tx, order_id, "cancelled")
    return {"status": "cancelled", "order_id": order_id}


def confirm(tx: Tx, _key: str, body: dict[str, Any]) -> dict[str, Any]:
    order_id = body["order_id"]
    order = find_order(tx, order_id, lock=True)
    if order is None:
        raise Refusal("order_not_found", f"no order {order_id!r}")
    if order["state"] != "pending":
        raise Refusal(f"order_{order['state']}", f"order {order_id!r} is {order['state']}")
    _move(tx, order_id, "confirmed")
    return {"status": "confirmed", "order_id": order_id}


def list_orders(tx: Tx, *, limit: int, after: str | None) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT order_id FROM orders WHERE order_id > ? ORDER BY order_id LIMIT ?",
        (after or "", limit),
    )
    return [order for (order_id,) in rows if (order := find_order(tx, str(order_id))) is not None]


@dataclass
class OrdersAudit:
    """What `audit` found; `ok` when nothing is wrong."""

    orders: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "orders": self.orders, "violations": self.violations}


def _applied(tx: Tx, operation: str) -> list[tuple[str, dict[str, Any]]]:
    """(key, answer) of every applied call of `operation` still recorded."""
    return [(key, orjson.loads(body)) for key, body in applied_records(tx, operation)]


def audit(tx: Tx) -> OrdersAudit:
    report = OrdersAudit()
    orders = {
        str(order_id): (str(key), str(state))
        for order_id, key, state in tx.execute("SELECT order_id, created_key, state FROM orders")
    }
    for _, state in orders.values():
        report.orders[state] = report.orders.get(state, 0) + 1
    created = {key: answer["order_id"] for key, answer in _applied(tx, "create")}
    cancelled = [answer["order_id"] for _, answer in _applied(tx, "cancel")]
    confirmed = [answer["order_id"] for _, answer in _applied(tx, "confirm")]
    # an order whose record retention purged counts against the purged totals
    unrecorded = Unrecorded(tx, ("create", "cancel", "confirm"))
    for order_id, (key, state) in sorted(orders.items()):
        if key not in created:
            unrecorded.add("create", f"order {order_id!r} has no applied create")
        elif created[key] != order_id:
            report.violations.append(f"order {order_id!r} has no applied create")
        times = (cancelled.count(order_id), confirmed.count(order_id))
        if times[0] and times[1]:
            report.violations.append(f"order {order_id!r} was both confirmed and cancelled")
        expected = {"pending": (0, 0), "cancelled": (1, 0), "confirmed": (0, 1)}[state]
        found = (
            f"order {order_id!r} is {state} but was cancelled {times[0]} and confirmed "
            f"{times[1]} times"
        )
        if times == (0, 0) and state != "pending":
            unrecorded.add("cancel" if state == "cancelled" else "confirm", found)
        elif times != expected:
            report.violations.append(found)
    report.violations += unrecorded.violations()
    for key, order_id in sorted(created.items()):
        if orders.get(order_id, ("", ""))[0] != key:
            report.violations.append(f"create {key!r} applied but order {order_id!r} is not its")
    return report


def orders_service(store: ParticipantStore) -> ParticipantService:
    service = ParticipantService("orders", store)
    service.action("create", OrderIn, create, compensation=Compensation("cancel", cancel))
    service.action("confirm", ConfirmIn, confirm)
    return service


def open_orders(database: Path | str) -> ParticipantService:
    """The service over a SQLite file (a path) or a PostgreSQL database (a `postgresql://` URL)."""
    return orders_service(open_store(database, schema=SCHEMA, name="orders"))
