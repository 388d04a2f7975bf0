"""Late deliveries are fenced: a real request that arrives after its compensation or void.

The late request is real HTTP on a raw socket: its headers and the first half of its body are sent
first, the settlement happens over another connection while the account service is still waiting
for the rest, then the rest of the body arrives. The service must refuse it with 409 and change
nothing.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e


class SlowRequest:
    """An HTTP/1.1 POST whose body is delivered in two parts, on demand."""

    def __init__(self, port: int, path: str, tx_id: str, body: dict[str, object]) -> None:
        self.payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ntransaction-id: {tx_id}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(self.payload)}\r\n"
            "connection: close\r\n\r\n"
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(head + self.payload[: len(self.payload) // 2])

    def finish(self) -> tuple[int, dict[str, object]]:
        self.sock.sendall(self.payload[len(self.payload) // 2 :])
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        self.sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(body)


def balance(url: str, account: str) -> int:
    return int(httpx.get(f"{url}/accounts/{account}").json()["balance"])


def test_a_debit_arriving_after_its_compensation_is_refused(launch: Launcher) -> None:
    service = launch(demo_accounts=2, demo_balance=1000)
    late = SlowRequest(
        service.port, "/debit", "late-debit", {"account_id": "acc-01", "amount": 400}
    )
    r = httpx.post(
        f"{service.url}/compensate_debit",
        headers={"transaction-id": "late-debit"},
        json={"account_id": "acc-01", "amount": 400},
    )
    assert r.json()["status"] == "nothing_to_compensate"
    status, body = late.finish()
    assert (status, body["error"]) == (409, "transaction_compensated")
    assert balance(service.url, "acc-01") == 1000
    assert httpx.get(f"{service.url}/audit").json()["ok"] is True


def test_a_credit_arriving_after_its_void_is_refused(launch: Launcher) -> None:
    service = launch(demo_accounts=2, demo_balance=1000)
    late = SlowRequest(
        service.port, "/credit", "late-credit", {"account_id": "acc-02", "amount": 300}
    )
    r = httpx.post(f"{service.url}/void_credit", headers={"transaction-id": "late-credit"})
    assert r.json()["status"] == "voided"
    status, body = late.finish()
    assert (status, body["error"]) == (409, "transaction_voided")
    assert balance(service.url, "acc-02") == 1000
    assert httpx.get(f"{service.url}/audit").json()["ok"] is True


def test_the_slow_request_alone_is_applied_normally(launch: Launcher) -> None:
    service = launch(demo_accounts=2, demo_balance=1000)
    late = SlowRequest(service.port, "/debit", "slow-ok", {"account_id": "acc-01", "amount": 1})
    status, body = late.finish()
    assert (status, body["status"]) == (200, "applied")
    assert balance(service.url, "acc-01") == 999
