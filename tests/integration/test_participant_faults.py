"""Injected faults in the kit's participants, configured by `SAGABANK_PARTICIPANT_FAULTS`: a real
`sagabank serve --role inventory` fails `reserve` as told (and nothing else), settings naming an
operation or a participant that does not exist refuse the start, and the order saga settles an
inventory fault by compensation: a lost `reserve` (applied) is released, a refused-before one
leaves the tombstone; either way the order is cancelled and nothing is held."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from repository_after.config import ConfigurationError, load_settings
from repository_after.entrypoints.participants import hosted_participants
from tests.conftest import Launcher
from tests.integration.test_order_saga_e2e import (
    OPENING,
    Stack,
    assert_invariants,
    balances,
    calls,
    open_stack,
    order,
    run,
    stock,
)


def reserve_faults(mode: str, operations: tuple[str, ...] = ("reserve",)) -> dict[str, object]:
    return {"inventory": {"operations": list(operations), "rate": 1.0, "mode": mode, "seed": 3}}


def test_the_inventory_process_fails_reserve_after_applying_it_and_nothing_else(
    launch: Launcher,
) -> None:
    inventory = launch(
        role="inventory", name="inv", participant_faults=json.dumps(reserve_faults("after"))
    )
    lines = {"lines": [{"sku": "apple", "qty": 2}]}
    with httpx.Client(base_url=inventory.url, timeout=10) as client:
        assert client.post("/stock", json={"sku": "apple", "qty": 5}).is_success
        for _ in range(2):  # the reservation is made once; both answers are lost
            lost = client.post("/reserve", json=lines, headers={"transaction-id": "s-1:reserve"})
            assert (lost.status_code, lost.json()["error"]) == (500, "injected_fault")
        assert client.get("/reservations/s-1:reserve").json()["state"] == "reserved"
        assert client.get("/stock").json()["stock"][0]["available"] == 3
        released = client.post("/release", headers={"transaction-id": "s-1:reserve"})
        assert released.json()["status"] == "released"  # `release` is not named: no fault
        assert client.get("/faults").json() == {
            "service": "inventory",
            "rate": 1.0,
            "mode": "after",
            "seed": 3,
            "operations": {"reserve": {"before": 0, "after": 2}},
        }
        assert client.get("/audit").json()["ok"]


def test_faults_on_an_operation_the_participant_lacks_refuse_the_start(tmp_path: Path) -> None:
    config = load_settings(
        role="inventory",
        database_url=f"sqlite:///{tmp_path / 'inv.db'}",
        participant_faults=reserve_faults("before", ("reserve", "debit")),
    )
    with pytest.raises(ConfigurationError, match="PARTICIPANT_FAULTS: inventory has no operation"):
        hosted_participants(config)


def test_faults_for_a_participant_that_does_not_exist_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="SAGABANK_PARTICIPANT_FAULTS: no participant"):
        load_settings(participant_faults={"warehouse": reserve_faults("before")["inventory"]})


@pytest.fixture(params=["before", "after"])
async def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The order saga's three services, the inventory failing every `reserve` in one mode."""
    async with open_stack(tmp_path, participant_faults=reserve_faults(request.param)) as opened:
        yield opened


async def test_an_unknown_reserve_is_compensated_by_a_release_that_knows_its_tombstone(
    faulty: Stack,
) -> None:
    view = await run(faulty, "s-faulty", order("o-1", 300, apple=2))
    assert view["status"] == "compensated", view
    mode = (await faulty.inventory.get("/faults")).json()["mode"]
    # `after`: the reservation was made and is released; `before`: never made, a tombstone.
    word = {"after": "released", "before": "nothing_to_compensate"}[mode]
    assert calls(view) == [
        ("create", "create", "created"),
        ("reserve", "reserve", "injected_fault"),  # no retry here: unknown, then compensated
        ("reserve", "release", word),
        ("create", "cancel", "cancelled"),
    ]
    held = await faulty.inventory.get("/reservations/s-faulty:reserve")
    expected = {"after": (200, "released"), "before": (404, "reservation_not_found")}[mode]
    assert (held.status_code, held.json().get("state") or held.json()["error"]) == expected
    assert all(row["available"] == row["opened"] for row in (await stock(faulty)).values())
    assert await balances(faulty) == {"acc-01": OPENING, "acc-02": OPENING}
    await assert_invariants(faulty)
