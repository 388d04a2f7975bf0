"""The transfers API of `sagabank serve` (role all: the orchestrator calls itself over HTTP)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e

BODY = {"source": "acc-01", "target": "acc-02", "amount": 1_000}


def post(url: str, body: dict[str, object], tx_id: str | None = None) -> httpx.Response:
    headers = {"transaction-id": tx_id} if tx_id else {}
    return httpx.post(f"{url}/transfers", json=body, headers=headers, timeout=15)


def test_a_transfer_completes_and_shows_its_history(launch: Launcher) -> None:
    service = launch(role="all", name="all", transfer_wait=60)
    r = post(service.url, BODY, "tr-1")
    assert r.status_code == 200
    view = r.json()
    assert (view["status"], view["source"], view["amount"]) == ("completed", "acc-01", 1_000)
    assert [(a["operation"], a["outcome"], a["status_code"]) for a in view["attempts"]] == [
        ("debit", "succeeded", 200),
        ("credit", "succeeded", 200),
    ]
    assert r.headers["Location"] == "/transfers/tr-1"
    balances = {
        a["account_id"]: a["balance"]
        for a in httpx.get(f"{service.url}/accounts").json()["accounts"]
    }
    assert (balances["acc-01"], balances["acc-02"]) == (99_000, 101_000)


def test_the_same_transaction_id_replays_the_same_saga(launch: Launcher) -> None:
    service = launch(role="all", name="all", transfer_wait=60)
    first = post(service.url, BODY, "tr-2")
    again = post(service.url, BODY, "tr-2")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["attempts"] == first.json()["attempts"]
    other = post(service.url, {**BODY, "amount": 5}, "tr-2")
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    total = httpx.get(f"{service.url}/accounts/acc-01").json()["balance"]
    assert total == 99_000


def test_without_an_id_each_request_is_a_new_transfer(launch: Launcher) -> None:
    service = launch(role="all", name="all", transfer_wait=60)
    ids = {post(service.url, BODY).json()["transaction_id"] for _ in range(3)}
    assert len(ids) == 3


def test_a_refused_debit_ends_rejected_and_moves_nothing(launch: Launcher) -> None:
    service = launch(role="all", name="all", transfer_wait=60)
    r = post(service.url, {**BODY, "amount": 10**9}, "tr-big")
    assert r.json()["status"] == "rejected"
    assert r.json()["attempts"][0]["error"] == "insufficient_funds"
    assert httpx.get(f"{service.url}/accounts").json()["total"] == 1_000_000


def test_a_slow_transfer_answers_202_and_settles_later(launch: Launcher) -> None:
    service = launch(role="all", name="all", transfer_wait=0)
    r = post(service.url, BODY, "tr-slow")
    assert r.status_code == 202
    assert r.json()["status"] not in ("completed", "compensated", "rejected")
    deadline = time.monotonic() + 30
    while (view := httpx.get(f"{service.url}/transfers/tr-slow").json())["status"] != "completed":
        assert time.monotonic() < deadline, view
        time.sleep(0.05)  # polling a remote state machine, not standing in for synchronisation


def test_listing_filters_by_state_and_counts(launch: Launcher) -> None:
    service = launch(
        role="all", name="all", transfer_wait=60, credit_failure_rate=1.0, retry_attempts=1
    )
    post(service.url, BODY, "tr-c")
    post(service.url, {**BODY, "amount": 10**9}, "tr-r")
    listing = httpx.get(f"{service.url}/transfers", params={"state": "compensated"}).json()
    assert [t["transaction_id"] for t in listing["transfers"]] == ["tr-c"]
    assert listing["counts"] == {"compensated": 1, "rejected": 1}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**BODY, "target": "acc-01"}, "same_account"),
        ({**BODY, "amount": 0}, "invalid_request"),
        ({"source": "acc-01"}, "invalid_request"),
    ],
)
def test_bad_transfer_requests_are_refused(launch: Launcher, body, code) -> None:
    service = launch(role="all", name="all", transfer_wait=60)
    r = post(service.url, body, "tr-bad")
    assert r.status_code == 422
    assert r.json()["error"] == code
    assert httpx.get(f"{service.url}/transfers/tr-bad").status_code == 404


def test_operator_actions_on_a_saga_that_is_not_parked_are_409(launch: Launcher) -> None:
    service = launch(role="all", name="all", transfer_wait=60)
    post(service.url, BODY, "tr-ok")
    r = httpx.post(f"{service.url}/transfers/tr-ok/retry")
    assert r.status_code == 409
    assert r.json()["error"] == "invalid_transition"


def test_the_answer_to_a_transfer_is_what_the_log_shows_afterwards(launch: Launcher) -> None:
    """The answer is built from the driver's events in memory (no read-back); it must be exactly
    the saga the log holds, timestamps included, for completed and compensated transfers."""
    service = launch(
        role="all",
        name="all",
        transfer_wait=60,
        credit_failure_rate=0.5,
        fault_seed=3,
        retry_attempts=1,
    )
    statuses = set()
    for i in range(12):
        answer = post(service.url, {**BODY, "amount": 10 + i}, f"tr-view-{i}")
        assert answer.status_code == 200
        stored = httpx.get(f"{service.url}/transfers/tr-view-{i}", timeout=15)
        assert stored.status_code == 200
        assert answer.json() == stored.json()
        statuses.add(answer.json()["status"])
    assert statuses == {"completed", "compensated"}
