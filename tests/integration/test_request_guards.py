"""The checks every request passes before any route (`entrypoints/limits.py`): trusted hosts
(DNS rebinding), duplicate `transaction-id` / `content-type` headers, and cross-site browser
requests (CSRF). Each refusal is house-format JSON and records nothing. The account service on
a real SQLite file, through ASGITransport; the Host header is set per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from repository_after.config import Settings
from tests.conftest import accounts_settings, asgi_client

DEBIT = {"account_id": "acc-01", "amount": 500}


@pytest.fixture
async def loopback(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The default trust (loopback names), whatever the test run's environment says."""
    async for client in asgi_client(accounts_settings(tmp_path, trusted_hosts="")):
        client.headers["host"] = "127.0.0.1"
        await client.post("/accounts", json={"account_id": "acc-01", "initial_balance": 1000})
        yield client


async def _balance(client: httpx.AsyncClient) -> int:
    reply = await client.get("/accounts/acc-01", headers={"host": "127.0.0.1"})
    balance: int = reply.json()["balance"]
    return balance


def test_default_trusts_loopback_and_a_named_bind_host() -> None:
    assert Settings(trusted_hosts="").resolved_trusted_hosts() == ("127.0.0.1", "localhost", "::1")
    wildcard = Settings(trusted_hosts="", host="0.0.0.0").resolved_trusted_hosts()
    assert "0.0.0.0" not in wildcard
    assert "localhost" in wildcard
    named = Settings(trusted_hosts="", host="bank.internal").resolved_trusted_hosts()
    assert "bank.internal" in named
    listed = Settings(trusted_hosts="bank.example, 127.0.0.1").resolved_trusted_hosts()
    assert listed == ("bank.example", "127.0.0.1")


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000"])
async def test_loopback_hosts_are_served(loopback: httpx.AsyncClient, host: str) -> None:
    reply = await loopback.get("/health", headers={"host": host})
    assert reply.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
async def test_other_hosts_are_refused_before_anything_runs(
    loopback: httpx.AsyncClient, host: str
) -> None:
    reply = await loopback.get("/health", headers={"host": host})
    assert reply.status_code == 400
    assert reply.json()["error"] == "untrusted_host"
    assert "message" in reply.json()
    moved = await loopback.post(
        "/debit", json=DEBIT, headers={"host": host, "transaction-id": "rebound"}
    )
    assert moved.status_code == 400
    assert await _balance(loopback) == 1000


async def test_star_trusts_any_host(tmp_path: Path) -> None:
    async for client in asgi_client(accounts_settings(tmp_path, trusted_hosts="*")):
        assert (await client.get("/health", headers={"host": "any.example"})).status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([("transaction-id", "t-1"), ("transaction-id", "t-2")], "invalid_transaction_id"),
        ([("transaction-id", "t-1"), ("transaction-id", "t-1")], "invalid_transaction_id"),
        (
            [
                ("transaction-id", "t-1"),
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
            "invalid_request",
        ),
    ],
)
async def test_duplicate_headers_are_refused_and_record_nothing(
    loopback: httpx.AsyncClient, headers: list[tuple[str, str]], code: str
) -> None:
    request = loopback.build_request(
        "POST", "/debit", content=b'{"account_id": "acc-01", "amount": 500}'
    )
    request.headers = httpx.Headers([("host", "127.0.0.1"), *headers])
    reply = await loopback.send(request)
    assert reply.status_code == 422
    assert reply.json()["error"] == code
    assert await _balance(loopback) == 1000
    # Nothing was recorded under either key: the first real call applies.
    again = await loopback.post(
        "/debit", json=DEBIT, headers={"host": "127.0.0.1", "transaction-id": "t-1"}
    )
    assert again.json()["status"] == "applied"


async def test_duplicate_headers_are_refused_on_reads_too(loopback: httpx.AsyncClient) -> None:
    request = loopback.build_request("GET", "/accounts")
    request.headers = httpx.Headers(
        [("host", "127.0.0.1"), ("transaction-id", "a"), ("transaction-id", "b")]
    )
    assert (await loopback.send(request)).status_code == 422


CROSS_SITE = [
    {"sec-fetch-site": "cross-site"},
    {"origin": "https://evil.example"},
    {"origin": "http://evil.example:8000", "sec-fetch-site": "same-site"},
    {"origin": "null"},
]


@pytest.mark.parametrize("browser", CROSS_SITE)
async def test_cross_site_state_changes_are_refused(
    loopback: httpx.AsyncClient, browser: dict[str, str]
) -> None:
    reply = await loopback.post(
        "/debit", json=DEBIT, headers={"host": "127.0.0.1", "transaction-id": "csrf", **browser}
    )
    assert reply.status_code == 403
    assert reply.json()["error"] == "cross_site_request"
    assert await _balance(loopback) == 1000


@pytest.mark.parametrize(
    "browser",
    [
        {},  # curl, httpx, server to server
        {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},
        {"origin": "http://localhost:8000"},  # another trusted name of this service
        {"sec-fetch-site": "none"},  # typed into the address bar
    ],
)
async def test_same_site_and_non_browser_state_changes_pass(
    loopback: httpx.AsyncClient, browser: dict[str, str]
) -> None:
    reply = await loopback.post(
        "/debit", json=DEBIT, headers={"host": "127.0.0.1:8000", "transaction-id": "ok", **browser}
    )
    assert reply.status_code == 200, reply.text
    assert await _balance(loopback) == 500


async def test_cross_site_reads_are_not_csrf(loopback: httpx.AsyncClient) -> None:
    reply = await loopback.get(
        "/accounts", headers={"host": "127.0.0.1", "sec-fetch-site": "cross-site"}
    )
    assert reply.status_code == 200
