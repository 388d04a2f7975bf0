"""The classes saga end to end over real HTTP on loopback: the pupils and the classes services
each served by uvicorn as its own app (roles `pupils`, `classes`, each on its own SQLite file),
an account service (role `accounts`, which the orchestrator always calls for its health), and an
orchestrator (role `orchestrator`) that finds the two services through `SAGABANK_SERVICES`.
A group assigned and enrolled; a pupil already in another class; a full class (a definite
refusal of the pivot: the pupils are unassigned); an unknown `enrol` settled by `void_enrol`
both ways (injected faults on the classes service). After each, the classes audit across both
services' own reads (`adapters.http_class_books`, `service_layer.class_audit`): clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.adapters.http_class_books import ClassServices, read_class_books
from repository_after.domain.saga_definition import AT_REST
from repository_after.service_layer.class_audit import audit_classes
from tests.integration.observability_support import (
    orchestrator_client,
    orchestrator_settings,
    served,
    served_all,
    settings,
)

PUPILS = [f"p{i}" for i in range(1, 9)]
CLASSES = {"c-small": 2, "c-big": 5}


@dataclass
class Stack:
    sagas: httpx.AsyncClient  # the orchestrator (ASGI)
    pupils: httpx.AsyncClient
    classes: httpx.AsyncClient
    ids: list[str]  # the sagas started


@asynccontextmanager
async def open_stack(tmp_path: Path, **classes_settings: object) -> AsyncIterator[Stack]:
    async with (
        served(settings(tmp_path, "accounts", role="accounts")) as accounts_url,
        served(settings(tmp_path, "pupils", role="pupils")) as pupils_url,
        served(settings(tmp_path, "classes", role="classes", **classes_settings)) as classes_url,
    ):
        services = {"pupils": {"url": pupils_url}, "classes": {"url": classes_url}}
        config = orchestrator_settings(
            tmp_path, accounts_url, services=services, retry_attempts=1, transfer_wait=30
        )
        async with (
            orchestrator_client(config) as sagas,
            httpx.AsyncClient(base_url=pupils_url) as pupils,
            httpx.AsyncClient(base_url=classes_url) as classes,
        ):
            registered = await pupils.post("/pupils", json={"pupils": PUPILS})
            assert registered.json() == {"registered": len(PUPILS), "known": 0}
            for class_id, capacity in CLASSES.items():
                opened = await classes.post(
                    "/classes", json={"class_id": class_id, "capacity": capacity}
                )
                assert opened.status_code == 200, opened.text
            yield Stack(sagas, pupils, classes, [])


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path) as opened:
        yield opened


async def run(stack: Stack, saga_id: str, class_id: str, *pupils: str) -> dict[str, Any]:
    """Start the classes saga and wait (with a deadline) until it is at rest; its view."""
    body = {"class_id": class_id, "pupils": list(pupils)}
    key = {"transaction-id": saga_id}
    started = await stack.sagas.post("/sagas/classes", json=body, headers=key)
    assert started.status_code in (200, 202), started.text
    stack.ids.append(saga_id)
    async with asyncio.timeout(30):
        while True:
            view: dict[str, Any] = (await stack.sagas.get(f"/sagas/classes/{saga_id}")).json()
            if view["status"] in AT_REST:
                return view
            await asyncio.sleep(0.02)


def calls(view: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["step"], a["operation"], a["result"] or a["error"]) for a in view["attempts"]]


async def class_of(stack: Stack, pupil_id: str) -> str | None:
    found: str | None = (await stack.pupils.get(f"/pupils/{pupil_id}")).json()["class_id"]
    return found


async def roster(stack: Stack, class_id: str) -> list[str]:
    found = (await stack.classes.get(f"/classes/{class_id}")).json()
    return [row["pupil_id"] for row in found["roster"]]


async def assert_invariants(stack: Stack) -> None:
    statuses = {
        saga: (await stack.sagas.get(f"/sagas/classes/{saga}")).json()["status"]
        for saga in stack.ids
    }
    books = await read_class_books(ClassServices(stack.pupils, stack.classes), sagas=statuses)
    assert audit_classes(books) == []
    assert books.pupils_audit["ok"]
    assert books.classes_audit["ok"]


async def test_a_group_is_assigned_and_enrolled(stack: Stack) -> None:
    view = await run(stack, "s-ok", "c-big", "p1", "p2", "p3")
    assert view["status"] == "completed", view
    assert calls(view) == [("assign", "assign", "assigned"), ("enrol", "enrol", "enrolled")]
    assert [await class_of(stack, p) for p in ("p1", "p2", "p3", "p4")] == [
        "c-big",
        "c-big",
        "c-big",
        None,
    ]
    assert await roster(stack, "c-big") == ["p1", "p2", "p3"]
    pupil = (await stack.pupils.get("/pupils/p1")).json()
    assert pupil["assigned_key"] == "s-ok:assign"
    await assert_invariants(stack)


async def test_a_pupil_in_another_class_refuses_the_whole_group(stack: Stack) -> None:
    await run(stack, "s-first", "c-big", "p1")
    view = await run(stack, "s-clash", "c-small", "p2", "p1")
    assert view["status"] == "rejected", view
    assert calls(view) == [("assign", "assign", "pupil_assigned")]
    assert await class_of(stack, "p2") is None  # nobody of the group was assigned
    assert await class_of(stack, "p1") == "c-big"
    assert await roster(stack, "c-small") == []
    await assert_invariants(stack)


async def test_a_full_class_refuses_the_roster_and_the_pupils_are_unassigned(
    stack: Stack,
) -> None:
    await run(stack, "s-fill", "c-small", "p1")
    view = await run(stack, "s-over", "c-small", "p2", "p3")  # 1 + 2 > 2
    assert view["status"] == "compensated", view
    assert calls(view) == [
        ("assign", "assign", "assigned"),
        ("enrol", "enrol", "class_full"),
        ("assign", "unassign", "unassigned"),
    ]
    assert [await class_of(stack, p) for p in ("p2", "p3")] == [None, None]
    assert await roster(stack, "c-small") == ["p1"]
    # The freed pupils can join another class.
    again = await run(stack, "s-again", "c-big", "p2", "p3")
    assert again["status"] == "completed", again
    await assert_invariants(stack)


def enrol_faults(mode: str) -> dict[str, object]:
    return {"participant_faults": {"classes": {"operations": ["enrol"], "rate": 1.0, "mode": mode}}}


async def test_an_unknown_enrol_that_landed_is_settled_already_applied(tmp_path: Path) -> None:
    async with open_stack(tmp_path, **enrol_faults("after")) as stack:
        view = await run(stack, "s-landed", "c-big", "p4", "p5")
        assert view["status"] == "completed", view
        assert calls(view) == [
            ("assign", "assign", "assigned"),
            ("enrol", "enrol", "injected_fault"),
            ("enrol", "void_enrol", "already_applied"),
        ]
        assert await roster(stack, "c-big") == ["p4", "p5"]
        assert await class_of(stack, "p4") == "c-big"
        await assert_invariants(stack)


async def test_an_unknown_enrol_that_never_landed_is_voided_and_compensated(
    tmp_path: Path,
) -> None:
    async with open_stack(tmp_path, **enrol_faults("before")) as stack:
        view = await run(stack, "s-void", "c-big", "p4", "p5")
        assert view["status"] == "compensated", view
        assert calls(view) == [
            ("assign", "assign", "assigned"),
            ("enrol", "enrol", "injected_fault"),
            ("enrol", "void_enrol", "voided"),
            ("assign", "unassign", "unassigned"),
        ]
        assert await roster(stack, "c-big") == []
        assert await class_of(stack, "p4") is None
        await assert_invariants(stack)


async def test_a_default_process_hosts_both_services_and_runs_the_saga(tmp_path: Path) -> None:
    """Role `all` (one `sagabank serve` on loopback): the pupils and classes services under
    `/pupils` and `/classes`, each on its own file beside the account store's, and its
    orchestrator finds them with no setting. A bad group is 422 before anything is logged."""
    async with served_all(tmp_path) as sagabank:
        registered = await sagabank.post("/pupils/pupils", json={"pupils": ["p1", "p2", "p3"]})
        assert registered.status_code == 200, registered.text
        opened = await sagabank.post("/classes/classes", json={"class_id": "c", "capacity": 2})
        assert opened.status_code == 200, opened.text
        body = {"class_id": "c", "pupils": ["p1", "p2"]}
        done = await sagabank.post("/sagas/classes", json=body, headers={"transaction-id": "s-1"})
        assert (done.status_code, done.json()["status"]) == (200, "completed")
        roster = (await sagabank.get("/classes/classes/c")).json()["roster"]
        assert [row["pupil_id"] for row in roster] == ["p1", "p2"]
        bad = {"class_id": "c", "pupils": ["p3", "p3"]}
        refused = await sagabank.post("/sagas/classes", json=bad, headers={"transaction-id": "s-2"})
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")
        assert (await sagabank.get("/sagas/classes/s-2")).status_code == 404
        assert (await sagabank.get("/pupils/audit")).json()["ok"]
        assert (await sagabank.get("/classes/audit")).json()["ok"]
    assert {"sagabank-pupils.db", "sagabank-classes.db"} <= {p.name for p in tmp_path.glob("*.db")}
