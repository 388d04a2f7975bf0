"""Model-based test of the inventory participant: random reserves, releases and sells under a
few keys, duplicate deliveries, a release before its reserve (the tombstone) and the late
reserve it fences out, key reuse with another body, restocking and malformed orders, against
the real service (HTTP through `ASGITransport`, a real SQLite file), each answer checked
against a small model of the rules (services/inventory.py, participant_kit/rules.py).

After every step: per SKU, available + reserved + sold = opened, none negative, and each the
model's; every reservation in the model's state; the service's own audit clean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from repository_after.services.inventory_http import create_inventory_app
from tests.integration.model_support import (
    SETTINGS,
    Body,
    ParticipantMachine,
    error,
    refused,
    succeeded,
)

OPENING = {"apple": 6, "pear": 3}
#: "ghost" is never stocked (until a restock draws it): one line in seven, so most orders fit
SKUS = st.sampled_from(("apple", "pear") * 3 + ("ghost",))
KEYS = st.sampled_from([f"o{i}:reserve" for i in range(4)])
SELL_KEYS = st.sampled_from([f"o{i}:sell" for i in range(3)])
LINES = st.lists(
    st.fixed_dictionaries({"sku": SKUS, "qty": st.integers(min_value=1, max_value=3)}),
    min_size=1,
    max_size=2,
    unique_by=lambda line: line["sku"],
)
Lines = list[dict[str, Any]]


def row(opened: int) -> dict[str, int]:
    return {"opened": opened, "available": opened, "reserved": 0, "sold": 0}


class InventoryMachine(ParticipantMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stock = {sku: row(n) for sku, n in OPENING.items()}
        #: reservation id (its reserve's key) -> (state, lines)
        self.reservations: dict[str, tuple[str, Lines]] = {}
        for sku, qty in OPENING.items():
            assert self.client.post("/stock", json={"sku": sku, "qty": qty}).status_code == 200

    def open(self, directory: Path) -> FastAPI:
        return create_inventory_app(directory / "inventory.db")

    def move(self, reservation: str, state: str, source: str, target: str) -> Lines:
        lines = self.reservations[reservation][1]
        for line in lines:
            self.stock[line["sku"]][source] -= line["qty"]
            self.stock[line["sku"]][target] += line["qty"]
        self.reservations[reservation] = (state, lines)
        return lines

    def held(self) -> list[str]:
        return sorted(r for r, (state, _) in self.reservations.items() if state == "reserved")

    def reserve_under(self, key: str, lines: Lines) -> tuple[int, str]:
        def decide(reply: httpx.Response) -> bool:
            if any(self.stock.get(ln["sku"], row(0))["available"] < ln["qty"] for ln in lines):
                return refused(reply, "out_of_stock")
            self.reservations[key] = ("reserved", lines)
            self.move(key, "reserved", "available", "reserved")
            return succeeded(reply, {"status": "reserved", "reservation_id": key, "lines": lines})

        return self.act("reserve", key, {"lines": lines}, decide, fenced_by="release")

    @rule(key=KEYS, lines=LINES)
    def reserve(self, key: str, lines: Lines) -> None:
        self.reserve_under(key, lines)

    @rule(key=KEYS, lines=st.none() | LINES)
    def release(self, key: str, lines: Lines | None) -> None:
        def undo(reply: httpx.Response, _: Body) -> bool:
            if (state := self.reservations[key][0]) != "reserved":
                return refused(reply, f"reservation_{state}")
            released = self.move(key, "released", "reserved", "available")
            expected = {"status": "released", "reservation_id": key, "lines": released}
            return succeeded(reply, expected)

        self.compensate(
            "reserve", "release", key, None if lines is None else {"lines": lines}, undo
        )

    @rule(key=SELL_KEYS, reservation=KEYS)
    def sell(self, key: str, reservation: str) -> None:
        def decide(reply: httpx.Response) -> bool:
            state = self.reservations.get(reservation, ("not_found", []))[0]
            if state != "reserved":
                return refused(reply, f"reservation_{state}")
            sold = self.move(reservation, "sold", "reserved", "sold")
            return succeeded(
                reply, {"status": "sold", "reservation_id": reservation, "lines": sold}
            )

        self.act("sell", key, {"reservation_id": reservation}, decide)

    @precondition(lambda self: self.held())
    @rule(data=st.data(), with_body=st.booleans())
    def release_a_reservation(self, data: st.DataObject, with_body: bool) -> None:
        key = data.draw(st.sampled_from(self.held()))
        self.release(key, self.reservations[key][1] if with_body else None)

    @precondition(lambda self: self.held())
    @rule(data=st.data(), key=SELL_KEYS)
    def sell_a_reservation(self, data: st.DataObject, key: str) -> None:
        self.sell(key, data.draw(st.sampled_from(self.held())))

    def state(self, key: str) -> object:
        """What the inventory says: its stock, and the reservation under `key` (or its 404)."""
        reservation = self.client.get(f"/reservations/{key}")
        return self.client.get("/stock").json(), reservation.status_code, reservation.json()

    @precondition(lambda self: self.recorded("reserve"))
    @rule(data=st.data(), lines=LINES, same=st.booleans())
    def reuse_a_reserve_key(self, data: st.DataObject, lines: Lines, same: bool) -> None:
        """A key reserve answered (reserved or refused), again: its first order is replayed,
        another one refused (422); neither changes the stock or the reservation (`repeat`)."""
        key = data.draw(st.sampled_from(self.recorded("reserve")))
        first = self.records["reserve", key].request
        assert first is not None
        if same:
            body = first
        elif (body := {"lines": lines}) == first:  # another order: one more of its first SKU
            head, *rest = lines
            body = {"lines": [{**head, "qty": head["qty"] + 1}, *rest]}
        self.repeat("reserve", key, body, lambda: self.state(key))

    @precondition(lambda self: self.tombstoned("reserve", "release"))
    @rule(data=st.data(), lines=LINES)
    def late_reserve(self, data: st.DataObject, lines: Lines) -> None:
        """A reserve arriving after its release's tombstone changes nothing."""
        key = data.draw(st.sampled_from(self.tombstoned("reserve", "release")))
        assert self.reserve_under(key, lines) == (409, "transaction_compensated")

    @rule(sku=SKUS, qty=st.integers(min_value=1, max_value=3))
    def restock(self, sku: str, qty: int) -> None:
        reply = self.client.post("/stock", json={"sku": sku, "qty": qty})
        held = self.stock.setdefault(sku, row(0))
        held["opened"] += qty
        held["available"] += qty
        assert (reply.status_code, reply.json()) == (200, {"sku": sku, **held})

    @rule(key=KEYS, sku=SKUS)
    def malformed_reserve(self, key: str, sku: str) -> None:
        """An SKU twice in one order: 422, nothing reserved, nothing recorded."""
        line = {"sku": sku, "qty": 1}
        assert error(self.send("reserve", key, {"lines": [line, line]})) == (422, "invalid_request")

    @invariant()
    def stock_matches_the_model_and_adds_up(self) -> None:
        stock = {got.pop("sku"): got for got in self.client.get("/stock").json()["stock"]}
        assert stock == self.stock
        for counts in stock.values():
            assert min(counts.values()) >= 0
            assert counts["available"] + counts["reserved"] + counts["sold"] == counts["opened"]

    @invariant()
    def reservations_match_the_model_and_the_audit_is_clean(self) -> None:
        for reservation, (state, lines) in self.reservations.items():
            found = self.client.get(f"/reservations/{reservation}").json()
            assert (found["state"], found["lines"]) == (state, lines)
        audit = self.client.get("/audit").json()
        assert (audit["ok"], audit["violations"]) == (True, [])


InventoryMachine.TestCase.settings = SETTINGS
test_inventory_matches_its_model = InventoryMachine.TestCase
