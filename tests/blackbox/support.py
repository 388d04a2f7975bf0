"""A thin client of the account service's HTTP contract, used by every black-box test.

Only HTTP: nothing here imports either implementation. Accounts are opened fresh per test through
`POST /accounts` where the implementation supports it; an implementation without that endpoint
(the naive `repository_before`) lends its demo accounts instead, so tests assert on balance
*changes*, never on absolute balances they did not read first.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

OPERATIONS = ("debit", "credit", "compensate_debit", "void_credit")


def new_tx() -> str:
    """A transaction id no other test (or earlier run against the same server) has used."""
    return f"bb-{uuid.uuid4().hex}"


class Bank:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._lent: set[str] = set()

    def open(self, balance: int = 100_000) -> str:
        """A fresh account holding `balance`, or a demo account holding at least that much."""
        account_id = f"bb-{uuid.uuid4().hex[:24]}"
        r = self.client.post(
            "/accounts", json={"account_id": account_id, "initial_balance": balance}
        )
        if r.status_code == 201:
            return account_id
        assert r.status_code in (404, 405), f"POST /accounts answered {r.status_code}: {r.text}"
        for row in sorted(self.accounts()["accounts"], key=lambda a: -a["balance"]):
            if row["account_id"] not in self._lent and row["balance"] >= balance:
                self._lent.add(row["account_id"])
                return str(row["account_id"])
        raise AssertionError("no account can be opened and no demo account has enough money")

    def accounts(self) -> dict[str, Any]:
        r = self.client.get("/accounts")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def balance(self, account_id: str) -> int:
        for row in self.accounts()["accounts"]:
            if row["account_id"] == account_id:
                return int(row["balance"])
        raise AssertionError(f"account {account_id} is not listed by GET /accounts")

    def total(self) -> int:
        return int(self.accounts()["total"])

    def call(
        self, operation: str, tx: str | None, account_id: str | None = None, amount: Any = None
    ) -> httpx.Response:
        assert operation in OPERATIONS
        headers = {} if tx is None else {"transaction-id": tx}
        body = None if account_id is None else {"account_id": account_id, "amount": amount}
        return self.client.post(f"/{operation}", headers=headers, json=body)

    def debit(self, tx: str | None, account_id: str, amount: Any) -> httpx.Response:
        return self.call("debit", tx, account_id, amount)

    def credit(self, tx: str | None, account_id: str, amount: Any) -> httpx.Response:
        return self.call("credit", tx, account_id, amount)


def error_code(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None
