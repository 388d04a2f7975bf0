"""Model-based test: random debits, credits, compensations, voids, duplicates and key reuse
against the real account service (HTTP through TestClient, real SQLite file), checked after every
step against a small in-memory model of the rules in the README (the write-time saga rules
included: no compensation after the credit applied, no credit after the compensation)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from repository_after.entrypoints.app import create_app
from tests.conftest import accounts_settings
from tests.integration.model_support import SyncClient

TX_IDS = st.sampled_from([f"t{i}" for i in range(6)])
ACCOUNTS = st.sampled_from(["a", "b", "ghost"])
AMOUNTS = st.integers(min_value=1, max_value=1500)
OPENING = {"a": 1000, "b": 500}


@dataclass
class Record:
    account: str | None
    amount: int | None
    status: str
    code: int
    body: dict[str, Any]


@dataclass
class Model:
    balances: dict[str, int] = field(default_factory=lambda: dict(OPENING))
    records: dict[tuple[str, str], Record] = field(default_factory=dict)

    def applied(self, op: str, tx: str) -> Record | None:
        r = self.records.get((op, tx))
        return r if r is not None and r.status in ("applied", "compensated") else None

    def rolled_back(self, tx: str) -> bool:
        """The saga's debit was compensated or tombstoned (a refused compensation is not)."""
        r = self.records.get(("compensate_debit", tx))
        return r is not None and r.status in ("compensated", "nothing_to_compensate")


def agrees(account: str | None, amount: int | None, rec: Record) -> bool:
    return all(
        x is None or y is None or x == y for x, y in ((account, rec.account), (amount, rec.amount))
    )


class AccountServiceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.client = SyncClient(create_app(accounts_settings(Path(self._dir.name))))
        for name, balance in OPENING.items():
            self.client.post("/accounts", json={"account_id": name, "initial_balance": balance})
        self.model = Model()

    def teardown(self) -> None:
        self.client.close()
        self._dir.cleanup()

    def send(self, op: str, tx: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        r = self.client.post(f"/{op}", json=body, headers={"transaction-id": tx})
        return r.status_code, r.json()

    def expect_replay_or_reuse(
        self, rec: Record, account: str | None, amount: int | None, code: int, body: dict[str, Any]
    ) -> None:
        if agrees(account, amount, rec):
            assert (code, body) == (rec.code, rec.body)
        else:
            assert (code, body["error"]) == (422, "idempotency_key_reused")

    def remember(
        self,
        op: str,
        tx: str,
        account: str | None,
        amount: int | None,
        code: int,
        body: dict[str, Any],
    ) -> None:
        status = body.get("status", "rejected") if code == 200 else "rejected"
        self.model.records[(op, tx)] = Record(account, amount, status, code, body)

    @rule(tx=TX_IDS, account=ACCOUNTS, amount=AMOUNTS)
    def debit(self, tx: str, account: str, amount: int) -> None:
        code, body = self.send("debit", tx, {"account_id": account, "amount": amount})
        m = self.model
        if (rec := m.records.get(("debit", tx))) is not None:
            return self.expect_replay_or_reuse(rec, account, amount, code, body)
        if m.rolled_back(tx):
            assert (code, body["error"]) == (409, "transaction_compensated")
            return None
        if account not in m.balances:
            assert (code, body["error"]) == (404, "account_not_found")
        elif m.balances[account] < amount:
            assert (code, body["error"]) == (409, "insufficient_funds")
        else:
            m.balances[account] -= amount
            assert (code, body["status"], body["balance_after"]) == (
                200,
                "applied",
                m.balances[account],
            )
        self.remember("debit", tx, account, amount, code, body)
        return None

    @rule(tx=TX_IDS, account=ACCOUNTS, amount=AMOUNTS)
    def credit(self, tx: str, account: str, amount: int) -> None:
        code, body = self.send("credit", tx, {"account_id": account, "amount": amount})
        m = self.model
        if (rec := m.records.get(("credit", tx))) is not None:
            return self.expect_replay_or_reuse(rec, account, amount, code, body)
        void = m.records.get(("void_credit", tx))
        if void is not None and void.status == "voided":
            assert (code, body["error"]) == (409, "transaction_voided")
            return None
        if m.rolled_back(tx):
            assert (code, body["error"]) == (409, "transfer_compensated")
        elif account not in m.balances:
            assert (code, body["error"]) == (404, "account_not_found")
        else:
            m.balances[account] += amount
            assert (code, body["balance_after"]) == (200, m.balances[account])
        self.remember("credit", tx, account, amount, code, body)
        return None

    @rule(tx=TX_IDS, account=st.none() | ACCOUNTS, amount=st.none() | AMOUNTS)
    def compensate_debit(self, tx: str, account: str | None, amount: int | None) -> None:
        given = {k: v for k, v in (("account_id", account), ("amount", amount)) if v is not None}
        code, body = self.send("compensate_debit", tx, given or None)
        m = self.model
        if (rec := m.records.get(("compensate_debit", tx))) is not None:
            return self.expect_replay_or_reuse(rec, account, amount, code, body)
        debit = m.applied("debit", tx)
        if m.applied("credit", tx) is not None:
            assert (code, body["error"]) == (409, "transfer_credited")
            self.remember("compensate_debit", tx, account, amount, code, body)
        elif debit is None:
            assert (code, body["status"]) == (200, "nothing_to_compensate")
            self.remember("compensate_debit", tx, account, amount, code, body)
        elif not agrees(account, amount, debit):
            assert (code, body["error"]) == (422, "idempotency_key_reused")
        else:
            assert debit.account is not None
            assert debit.amount is not None
            m.balances[debit.account] += debit.amount
            assert (code, body["status"], body["balance_after"]) == (
                200,
                "compensated",
                m.balances[debit.account],
            )
            self.remember("compensate_debit", tx, debit.account, debit.amount, code, body)
        return None

    @rule(tx=TX_IDS, account=st.none() | ACCOUNTS, amount=st.none() | AMOUNTS)
    def void_credit(self, tx: str, account: str | None, amount: int | None) -> None:
        given = {k: v for k, v in (("account_id", account), ("amount", amount)) if v is not None}
        code, body = self.send("void_credit", tx, given or None)
        m = self.model
        if (rec := m.records.get(("void_credit", tx))) is not None:
            return self.expect_replay_or_reuse(rec, account, amount, code, body)
        credit = m.applied("credit", tx)
        if credit is None:
            assert (code, body["status"]) == (200, "voided")
            self.remember("void_credit", tx, account, amount, code, body)
        elif not agrees(account, amount, credit):
            assert (code, body["error"]) == (422, "idempotency_key_reused")
        else:
            assert (code, body["status"]) == (200, "already_applied")
            self.remember("void_credit", tx, credit.account, credit.amount, code, body)
        return None

    @invariant()
    def balances_match_the_model_and_the_ledger(self) -> None:
        listing = self.client.get("/accounts").json()
        assert {a["account_id"]: a["balance"] for a in listing["accounts"]} == self.model.balances
        audit = self.client.get("/audit").json()
        structural = [
            v
            for v in audit["violations"]
            if v.split(":")[0]
            in ("balance_mismatch", "negative_balance", "applied_twice", "compensated_and_credited")
        ]
        assert structural == []


AccountServiceMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_account_service_matches_its_model = AccountServiceMachine.TestCase
