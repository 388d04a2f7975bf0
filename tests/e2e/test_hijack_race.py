"""The hijack race of issue 20, across real processes: while 200 transfers run through an
orchestrator, an attacker who reads their transaction ids as they are issued races the account
service's money routes (`/credit`, `/debit`, `/compensate_debit`, `/void_credit`) with those ids
to its own account `mallory`. Before the service token, racing `/credit` hijacked 67 of 200
in-flight transfers (+580 created, 90 diverted).

With `SAGABANK_SERVICE_TOKEN` set on both services every attacker call (without a token, or with
the ADMIN token, which must not open the money routes) is a 401 and nothing is recorded: mallory's
balance is unchanged, each transfer ends completed/compensated/rejected with both legs matching
in the ledgers, and money is conserved. A second test pins why the token matters: with it unset
on the account service (the old behaviour) the same attacker creates money in mallory's account.

Bounded: 200 transfers at concurrency 16, loopback only, every call under a timeout. The
attacker is fed by a queue the client fills just before posting each transfer (no sleeps).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e

SERVICE, ADMIN = "hijack-serv1ce", "hijack-adm1n"
TRANSFERS, CONCURRENCY = 200, 16
MALLORY, MALLORY_OPENING, LOOT = "mallory", 1_000, 500
ACCOUNTS = [f"acc-{n:02d}" for n in range(1, 11)]
AT_REST = {"completed", "compensated", "rejected"}
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class Race:
    """What one run of the race saw: each transfer's request and final status, and the status
    codes of every attacker call (by route and credential)."""

    transfers: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    attacks: list[tuple[str, str, int]] = field(default_factory=list)


def _request(i: int) -> tuple[str, str, int]:
    return ACCOUNTS[i % 10], ACCOUNTS[(i + 3) % 10], 100 + i


async def _client(url: str, race: Race, ids: asyncio.Queue[str | None]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        tx_id = f"hijack-{i:03d}"
        source, target, amount = _request(i)
        async with gate:
            race.transfers[tx_id] = (source, target, amount)
            ids.put_nowait(tx_id)  # the attacker learns the id as the transfer starts
            answer = await client.post(
                "/transfers",
                json={"source": source, "target": target, "amount": amount},
                headers={"transaction-id": tx_id},
            )
        assert answer.status_code == 200, answer.text
        race.statuses[tx_id] = answer.json()["status"]

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(one(client, i) for i in range(TRANSFERS)))
    ids.put_nowait(None)


async def _attacker(
    url: str, race: Race, ids: asyncio.Queue[str | None], routes: tuple[str, ...]
) -> None:
    credentials = {"none": {}, "admin": ADMIN_HEADERS}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def strike(tx_id: str, route: str, who: str) -> None:
            answer = await client.post(
                f"/{route}",
                json={"account_id": MALLORY, "amount": LOOT},
                headers={"transaction-id": tx_id, **credentials[who]},
            )
            race.attacks.append((route, who, answer.status_code))

        strikes: list[asyncio.Task[None]] = []
        while (tx_id := await ids.get()) is not None:
            for route in routes:
                for who in credentials:
                    strikes.append(asyncio.create_task(strike(tx_id, route, who)))
        await asyncio.gather(*strikes)


async def _run(accounts_url: str, orchestrator_url: str, routes: tuple[str, ...]) -> Race:
    race = Race()
    ids: asyncio.Queue[str | None] = asyncio.Queue()
    attack = _attacker(accounts_url, race, ids, routes)
    await asyncio.wait_for(asyncio.gather(_client(orchestrator_url, race, ids), attack), 50)
    return race


@pytest.fixture
def open_books() -> Iterator[Callable[[str], httpx.Client]]:
    """An admin-token reader of an account service's books; closed at the end even on failure."""
    clients: list[httpx.Client] = []

    def reader(url: str) -> httpx.Client:
        clients.append(httpx.Client(base_url=url, timeout=15, headers=ADMIN_HEADERS))
        return clients[-1]

    yield reader
    for client in clients:
        client.close()


def _setup(
    launch: Launcher, open_books: Callable[[str], httpx.Client], *, service_token: str
) -> tuple[str, str, httpx.Client]:
    accounts = launch(admin_token=ADMIN, service_token=service_token)
    books = open_books(accounts.url)
    opened = books.post(
        "/accounts", json={"account_id": MALLORY, "initial_balance": MALLORY_OPENING}
    )
    assert opened.status_code == 201, opened.text
    orchestrator = launch(
        name="sagas",
        role="orchestrator",
        accounts_url=accounts.url,
        transfer_wait=30,
        service_token=service_token,
    )
    return accounts.url, orchestrator.url, books


def _ledgers(books: httpx.Client) -> dict[str, dict[str, int]]:
    """Per account, the net delta recorded under each transaction id."""
    nets: dict[str, dict[str, int]] = {}
    for account in [*ACCOUNTS, MALLORY]:
        answer = books.get(f"/accounts/{account}/entries", params={"limit": 1000})
        assert answer.status_code == 200, answer.text
        net: dict[str, int] = defaultdict(int)
        for entry in answer.json():
            net[entry["transaction_id"]] += entry["delta"]
        nets[account] = dict(net)
    return nets


def test_with_the_service_token_the_hijack_race_moves_nothing(
    launch: Launcher, open_books: Callable[[str], httpx.Client]
) -> None:
    accounts_url, orchestrator_url, books = _setup(launch, open_books, service_token=SERVICE)
    before = books.get("/accounts").json()["total"]

    routes = ("credit", "debit", "compensate_debit", "void_credit")
    race = asyncio.run(_run(accounts_url, orchestrator_url, routes))

    assert len(race.attacks) == TRANSFERS * len(routes) * 2
    assert {code for _, _, code in race.attacks} == {401}, race.attacks[:5]
    assert set(race.statuses.values()) <= AT_REST, race.statuses
    assert len(race.statuses) == TRANSFERS
    assert books.get(f"/accounts/{MALLORY}").json()["balance"] == MALLORY_OPENING
    assert books.get("/accounts").json()["total"] == before  # 0 created, 0 diverted

    ledgers = _ledgers(books)
    assert ledgers[MALLORY] == {}  # no entry under any transfer's id
    for tx_id, (source, target, amount) in race.transfers.items():
        status = race.statuses[tx_id]
        # A completed transfer debited its source and credited its target; any other ended
        # with nothing moved on either side (a compensated debit nets to zero).
        moved = amount if status == "completed" else 0
        assert ledgers[source].get(tx_id, 0) == -moved, (tx_id, status)
        assert ledgers[target].get(tx_id, 0) == moved, (tx_id, status)
    assert "completed" in race.statuses.values()  # the transfers did run

    audit = books.get("/audit").json()
    assert audit["ok"] is True, audit


def test_without_the_service_token_the_same_attacker_diverts_money(
    launch: Launcher, open_books: Callable[[str], httpx.Client]
) -> None:
    """Why the token matters: with it unset (the old behaviour) the money routes are open, and
    the same race credits mallory under the transfers' own ids, out of nothing."""
    accounts_url, orchestrator_url, books = _setup(launch, open_books, service_token="")
    before = books.get("/accounts").json()["total"]

    race = asyncio.run(_run(accounts_url, orchestrator_url, ("credit",)))

    hijacked = [code for _, _, code in race.attacks if code == 200]
    assert hijacked, race.attacks[:5]
    # The orchestrator finds its credit's id taken: such transfers park for an operator
    # (failed_needs_attention) instead of completing, but the loot is already credited.
    assert len(race.statuses) == TRANSFERS
    mallory = books.get(f"/accounts/{MALLORY}").json()["balance"]
    assert mallory > MALLORY_OPENING  # the attacker's account grew
    assert books.get("/accounts").json()["total"] > before  # money was created
    assert any(tx_id in race.transfers for tx_id in _ledgers(books)[MALLORY])
