"""The inventory service, a saga participant built on the participant kit.

Stock per SKU in its own database: a SQLite file by default, PostgreSQL by URL. Operations
(`participant_kit`: each recorded once per key in the same transaction as the stock change,
replayed, fenced by tombstones):
- `reserve` (action; body: the order's lines `[{"sku", "qty"}]`, 1..50 lines, SKUs distinct):
  every line moves `qty` from available to reserved, under a reservation whose id is the call's
  key; answer `{"status": "reserved", "reservation_id", "lines"}`. Any line short of stock (or
  an SKU never stocked) is the definite refusal 409 `out_of_stock` naming the SKU, and nothing
  is reserved.
- `release` (its compensation): the reserved quantities go back to available; answer
  `{"status": "released", …}`. With no reservation it leaves the kit's tombstone
  `nothing_to_compensate`, which refuses a late `reserve` (409).
- `sell` (a retriable step's action, after the payment; body `{"reservation_id"}`): the
  reservation's quantities move from reserved to sold; an unknown reservation is 409
  `reservation_not_found`, a released one 409 `reservation_released`, one already sold (under
  another key) 409 `reservation_sold`.
Plus `open_stock` (open or top up an SKU), `list_stock`, `reservation` (its state and lines)
and `audit`, which its HTTP edge serves (`services.inventory_http`).

Invariants (`audit`): per SKU, available + reserved + sold = opened, reserved and sold equal the
quantities of the reservations in that state; every reservation is reserved, released or sold
exactly once: released ⇔ one applied `release`, sold ⇔ one applied `sell`, never both (a record
retention purged counts against its totals: `participant_kit.retention.Unrecorded`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
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

MAX_LINES = 50
MAX_QTY = 1_000_000
MAX_STOCK = 10**12
SKU_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY,"
    " opened BIGINT NOT NULL CHECK (opened >= 0),"
    " available BIGINT NOT NULL CHECK (available >= 0),"
    " reserved BIGINT NOT NULL CHECK (reserved >= 0),"
    " sold BIGINT NOT NULL CHECK (sold >= 0))",
    "CREATE TABLE IF NOT EXISTS reservations (reservation_id TEXT PRIMARY KEY,"
    " state TEXT NOT NULL CHECK (state IN ('reserved', 'released', 'sold')))",
    "CREATE TABLE IF NOT EXISTS reservation_lines (reservation_id TEXT NOT NULL"
    " REFERENCES reservations (reservation_id), sku TEXT NOT NULL REFERENCES stock (sku),"
    " position INTEGER NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),"
    " PRIMARY KEY (reservation_id, sku))",
)

Sku = Annotated[StrictStr, Field(pattern=SKU_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Line(_Strict):
    sku: Sku
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_QTY)]


class ReserveIn(_Strict):
    lines: Annotated[list[Line], Field(min_length=1, max_length=MAX_LINES)]

    @model_validator(mode="after")
    def _distinct_skus(self) -> ReserveIn:
        if len({line.sku for line in self.lines}) != len(self.lines):
            raise ValueError("each SKU appears once in an order's lines")
        return self


class SellIn(_Strict):
    reservation_id: Annotated[StrictStr, Field(pattern=TRANSACTION_ID_PATTERN.pattern)]


class StockIn(_Strict):
    sku: Sku
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_STOCK)]


def _lines(tx: Tx, reservation_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT sku, qty FROM reservation_lines WHERE reservation_id = ? ORDER BY position",
        (reservation_id,),
    )
    return [{"sku": sku, "qty": qty} for sku, qty in rows]


def _state(tx: Tx, reservation_id: str) -> str | None:
    rows = tx.execute(
        "SELECT state FROM reservations WHERE reservation_id = ?" + tx.for_update,
        (reservation_id,),
    )
    return str(rows[0][0]) if rows else None


def reserve(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    lines = body["lines"]
    # Every line checked (and, on PostgreSQL, its row locked: in SKU order, so two orders never
    # wait on each other) before anything moves.
    for line in sorted(lines, key=lambda line: str(line["sku"])):
        rows = tx.execute(
            "SELECT available FROM stock WHERE sku = ?" + tx.for_update, (line["sku"],)
        )
        available = int(rows[0][0]) if rows else 0
        if available < line["qty"]:
            raise Refusal(
                "out_of_stock",
                f"sku {line['sku']!r}: {available} available, {line['qty']} asked",
            )
    tx.execute("INSERT INTO reservations (reservation_id, state) VALUES (?, 'reserved')", (key,))
    for position, line in enumerate(lines):
        tx.execute(
            "UPDATE stock SET available = available - ?, reserved = reserved + ? WHERE sku = ?",
            (line["qty"], line["qty"], line["sku"]),
        )
        tx.execute(
            "INSERT INTO reservation_lines (reservation_id, sku, position, qty)"
            " VALUES (?, ?, ?, ?)",
            (key, line["sku"], position, line["qty"]),
        )
    return {"status": "reserved", "reservation_id": key, "lines": _lines(tx, key)}


def _move(tx: Tx, reservation_id: str, state: str, column: str) -> list[dict[str, Any]]:
    """The reservation's quantities leave `reserved` for `column`; its state becomes `state`."""
    lines = _lines(tx, reservation_id)
    for line in lines:
        tx.execute(
            f"UPDATE stock SET reserved = reserved - ?, {column} = {column} + ? WHERE sku = ?",
            (line["qty"], line["qty"], line["sku"]),
        )
    tx.execute(
        "UPDATE reservations SET state = ? WHERE reservation_id = ?", (state, reservation_id)
    )
    return lines


def release(tx: Tx, _key: str, reserved: dict[str, Any]) -> dict[str, Any]:
    """Compensation of `reserve`: `reserved` is reserve's recorded answer."""
    reservation_id = reserved["reservation_id"]
    state = _state(tx, reservation_id)
    if state != "reserved":
        raise Refusal(f"reservation_{state}", f"reservation {reservation_id!r} is {state}")
    lines = _move(tx, reservation_id, "released", "available")
    return {"status": "released", "reservation_id": reservation_id, "lines": lines}


def sell(tx: Tx, _key: str, body: dict[str, Any]) -> dict[str, Any]:
    reservation_id = body["reservation_id"]
    state = _state(tx, reservation_id)
    if state is None:
        raise Refusal("reservation_not_found", f"no reservation {reservation_id!r}")
    if state != "reserved":
        raise Refusal(f"reservation_{state}", f"reservation {reservation_id!r} is {state}")
    lines = _move(tx, reservation_id, "sold", "sold")
    return {"status": "sold", "reservation_id": reservation_id, "lines": lines}


def reservation(tx: Tx, reservation_id: str) -> dict[str, Any] | None:
    """The reservation's state and lines, or None (a read: no row lock)."""
    rows = tx.execute("SELECT state FROM reservations WHERE reservation_id = ?", (reservation_id,))
    if not rows:
        return None
    lines = _lines(tx, reservation_id)
    return {"reservation_id": reservation_id, "state": str(rows[0][0]), "lines": lines}


def open_stock(tx: Tx, sku: str, qty: int) -> dict[str, Any]:
    """Open an SKU with `qty`, or add `qty` to it (opened and available)."""
    rows = tx.execute("SELECT opened FROM stock WHERE sku = ?" + tx.for_update, (sku,))
    if rows and int(rows[0][0]) + qty > MAX_STOCK:
        raise Refusal("stock_limit_exceeded", f"sku {sku!r} would pass {MAX_STOCK}")
    if rows:
        tx.execute(
            "UPDATE stock SET opened = opened + ?, available = available + ? WHERE sku = ?",
            (qty, qty, sku),
        )
    else:
        tx.execute(
            "INSERT INTO stock (sku, opened, available, reserved, sold) VALUES (?, ?, ?, 0, 0)",
            (sku, qty, qty),
        )
    return stock_row(tx, sku)


def stock_row(tx: Tx, sku: str) -> dict[str, Any]:
    rows = tx.execute(
        "SELECT sku, opened, available, reserved, sold FROM stock WHERE sku = ?", (sku,)
    )
    return dict(zip(("sku", "opened", "available", "reserved", "sold"), rows[0], strict=True))


def list_stock(tx: Tx) -> list[dict[str, Any]]:
    rows = tx.execute("SELECT sku, opened, available, reserved, sold FROM stock ORDER BY sku")
    keys = ("sku", "opened", "available", "reserved", "sold")
    return [dict(zip(keys, row, strict=True)) for row in rows]


@dataclass
class InventoryAudit:
    """What `audit` found; `ok` when nothing is wrong."""

    skus: int = 0
    reservations: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "skus": self.skus,
            "reservations": self.reservations,
            "violations": self.violations,
        }


def _times(reservation_id: str, state: str, times: tuple[int, int]) -> str:
    did = f"released {times[0]} and sold {times[1]} times"
    return f"reservation {reservation_id!r} is {state} but was {did}"


def audit(tx: Tx) -> InventoryAudit:
    report = InventoryAudit()
    stock = list_stock(tx)
    report.skus = len(stock)
    by_state: dict[tuple[str, str], int] = {
        (str(sku), str(state)): int(total)
        for sku, state, total in tx.execute(
            "SELECT l.sku, r.state, SUM(l.qty) FROM reservation_lines l"
            " JOIN reservations r ON r.reservation_id = l.reservation_id GROUP BY l.sku, r.state"
        )
    }
    for row in stock:
        sku = row["sku"]
        if row["available"] + row["reserved"] + row["sold"] != row["opened"]:
            report.violations.append(
                f"sku {sku!r}: available {row['available']} + reserved {row['reserved']} + "
                f"sold {row['sold']} != opened {row['opened']}"
            )
        for column in ("reserved", "sold"):
            held = by_state.get((sku, column), 0)
            if row[column] != held:
                report.violations.append(
                    f"sku {sku!r}: {column} {row[column]} but its reservations hold {held}"
                )
    states = {
        str(r): str(s) for r, s in tx.execute("SELECT reservation_id, state FROM reservations")
    }
    for state in states.values():
        report.reservations[state] = report.reservations.get(state, 0) + 1
    reserved_by = {key for key, _ in applied_records(tx, "reserve")}
    released = [key for key, _ in applied_records(tx, "release")]
    sold = [orjson.loads(body)["reservation_id"] for _, body in applied_records(tx, "sell")]
    unrecorded = Unrecorded(tx, ("reserve", "release", "sell"))
    for reservation_id, state in sorted(states.items()):
        if reservation_id not in reserved_by:
            unrecorded.add("reserve", f"reservation {reservation_id!r} has no applied reserve")
        times = (released.count(reservation_id), sold.count(reservation_id))
        if times == (0, 0) and state != "reserved":
            done = "release" if state == "released" else "sell"
            unrecorded.add(done, _times(reservation_id, state, times))
        elif times != {"reserved": (0, 0), "released": (1, 0), "sold": (0, 1)}[state]:
            report.violations.append(_times(reservation_id, state, times))
    report.violations += unrecorded.violations()
    for key in sorted(reserved_by - states.keys()):
        report.violations.append(f"reserve {key!r} applied but no reservation exists")
    return report


def inventory_service(store: ParticipantStore) -> ParticipantService:
    service = ParticipantService("inventory", store)
    service.action("reserve", ReserveIn, reserve, compensation=Compensation("release", release))
    service.action("sell", SellIn, sell)
    return service


def open_inventory(database: Path | str) -> ParticipantService:
    """The service over a SQLite file (a path) or a PostgreSQL database (a `postgresql://` URL)."""
    return inventory_service(open_store(database, schema=SCHEMA, name="inventory"))
