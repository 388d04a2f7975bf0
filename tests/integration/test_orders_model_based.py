"""Model-based test of the orders participant: random creates, cancels and confirms under a few
keys and order ids, duplicate deliveries, a cancel before its create (the tombstone) and the
late create it fences out, key reuse with another body, against the real service (HTTP through
`ASGITransport`, a real SQLite file), each answer checked against a small model of the rules
(services/orders.py, participant_kit/rules.py).

After every step: every order in the model's state under the key that created it, and the
service's own audit clean (pending, cancelled, confirmed each matching one applied call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from repository_after.services.orders_http import create_orders_app
from tests.integration.model_support import (
    SETTINGS,
    Body,
    ParticipantMachine,
    refused,
    succeeded,
)

KEYS = st.sampled_from([f"s{i}:create" for i in range(4)])
CONFIRM_KEYS = st.sampled_from([f"s{i}:confirm" for i in range(3)])
ORDER_IDS = st.sampled_from(["o-1", "o-2", "o-3"])
TOTALS = st.sampled_from([100, 250])


def order(order_id: str, total: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": "apple", "qty": 2}],
        "total": total,
    }


class OrdersMachine(ParticipantMachine):
    def __init__(self) -> None:
        super().__init__()
        #: order id -> (the key that created it, its state)
        self.orders: dict[str, tuple[str, str]] = {}

    def open(self, directory: Path) -> FastAPI:
        return create_orders_app(directory / "orders.db")

    def created(self) -> list[str]:
        return sorted(k for op, k in self.records if op == "create" and self.applied(op, k))

    def create_under(self, key: str, order_id: str, total: int) -> tuple[int, str]:
        def decide(reply: httpx.Response) -> bool:
            if order_id in self.orders:
                return refused(reply, "order_exists")
            self.orders[order_id] = (key, "pending")
            return succeeded(reply, {"status": "created", "order_id": order_id, "state": "pending"})

        return self.act("create", key, order(order_id, total), decide, fenced_by="cancel")

    @rule(key=KEYS, order_id=ORDER_IDS, total=TOTALS)
    def create(self, key: str, order_id: str, total: int) -> None:
        self.create_under(key, order_id, total)

    @rule(key=KEYS, given=st.none() | st.tuples(ORDER_IDS, TOTALS))
    def cancel(self, key: str, given: tuple[str, int] | None) -> None:
        def undo(reply: httpx.Response, created: Body) -> bool:
            order_id = created["order_id"]
            if self.orders[order_id][1] == "confirmed":
                return refused(reply, "order_confirmed")
            self.orders[order_id] = (key, "cancelled")  # cancel runs under create's key
            return succeeded(reply, {"status": "cancelled", "order_id": order_id})

        self.compensate("create", "cancel", key, None if given is None else order(*given), undo)

    @rule(key=CONFIRM_KEYS, order_id=ORDER_IDS)
    def confirm(self, key: str, order_id: str) -> None:
        def decide(reply: httpx.Response) -> bool:
            state = self.orders.get(order_id, ("", "not_found"))[1]
            if state != "pending":
                return refused(reply, f"order_{state}")
            self.orders[order_id] = (self.orders[order_id][0], "confirmed")
            return succeeded(reply, {"status": "confirmed", "order_id": order_id})

        self.act("confirm", key, {"order_id": order_id}, decide)

    @precondition(lambda self: self.created())
    @rule(data=st.data(), with_body=st.booleans())
    def cancel_a_created_order(self, data: st.DataObject, with_body: bool) -> None:
        key = data.draw(st.sampled_from(self.created()))
        request = self.records["create", key].request
        assert request is not None
        self.cancel(key, (request["order_id"], request["total"]) if with_body else None)

    def pending(self) -> list[str]:
        return sorted(o for o, (_, state) in self.orders.items() if state == "pending")

    @precondition(lambda self: self.pending())
    @rule(data=st.data(), key=CONFIRM_KEYS)
    def confirm_a_pending_order(self, data: st.DataObject, key: str) -> None:
        self.confirm(key, data.draw(st.sampled_from(self.pending())))

    def state(self) -> object:
        """What the orders service says: every order (a few ids: one page), state and key."""
        return self.client.get("/orders").json()

    @precondition(lambda self: self.recorded("create"))
    @rule(data=st.data(), order_id=ORDER_IDS, total=TOTALS, same=st.booleans())
    def reuse_a_create_key(
        self, data: st.DataObject, order_id: str, total: int, same: bool
    ) -> None:
        """A key create answered (created or refused), again: its first order is replayed,
        another one refused (422); neither changes any order (`repeat`)."""
        key = data.draw(st.sampled_from(self.recorded("create")))
        first = self.records["create", key].request
        if same:
            body = first
        elif (body := order(order_id, total)) == first:  # another order: another total
            body = order(order_id, total + 1)
        self.repeat("create", key, body, self.state)

    @precondition(lambda self: self.tombstoned("create", "cancel"))
    @rule(data=st.data(), order_id=ORDER_IDS, total=TOTALS)
    def late_create(self, data: st.DataObject, order_id: str, total: int) -> None:
        """A create arriving after its cancel's tombstone changes nothing."""
        key = data.draw(st.sampled_from(self.tombstoned("create", "cancel")))
        assert self.create_under(key, order_id, total) == (409, "transaction_compensated")

    @invariant()
    def orders_match_the_model_and_the_audit_is_clean(self) -> None:
        listed = self.client.get("/orders").json()["orders"]
        assert {o["order_id"]: (o["created_key"], o["state"]) for o in listed} == self.orders
        audit = self.client.get("/audit").json()
        assert (audit["ok"], audit["violations"]) == (True, [])


OrdersMachine.TestCase.settings = SETTINGS
test_orders_match_their_model = OrdersMachine.TestCase
