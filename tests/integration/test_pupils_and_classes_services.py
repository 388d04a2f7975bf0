"""The pupils and the classes services on their own (`create_pupils_app`,
`create_classes_app`, SQLite files, through ASGITransport): each operation's answers and
refusals, what a refusal leaves unchanged, the reads (paged), and each service's audit naming a
file tampered with."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.services.classes_http import create_classes_app
from repository_after.services.pupils_http import create_pupils_app


async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.fixture
async def pupils(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_pupils_app(tmp_path / "pupils.db")):
        registered = await client.post("/pupils", json={"pupils": ["p1", "p2", "p3", "p4"]})
        assert registered.json() == {"registered": 4, "known": 0}
        yield client


@pytest.fixture
async def classes(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_classes_app(tmp_path / "classes.db")):
        for class_id, capacity in (("small", 2), ("big", 10)):
            body = {"class_id": class_id, "capacity": capacity}
            assert (await client.post("/classes", json=body)).status_code == 200
        yield client


async def post(client: httpx.AsyncClient, op: str, key: str, **body: object) -> httpx.Response:
    return await client.post(f"/{op}", json=body, headers={"transaction-id": key})


async def class_of(client: httpx.AsyncClient, pupil: str) -> object:
    return (await client.get(f"/pupils/{pupil}")).json()["class_id"]


async def test_assign_puts_the_whole_group_in_the_class_under_its_key(
    pupils: httpx.AsyncClient,
) -> None:
    done = await post(pupils, "assign", "s1:assign", class_id="big", pupils=["p1", "p2"])
    assert done.json() == {"status": "assigned", "class_id": "big", "pupils": ["p1", "p2"]}
    assert (await pupils.get("/pupils/p1")).json() == {
        "pupil_id": "p1",
        "class_id": "big",
        "assigned_key": "s1:assign",
    }
    assert await class_of(pupils, "p3") is None


@pytest.mark.parametrize(
    ("group", "error"),
    [(["p3", "p1"], "pupil_assigned"), (["p3", "nobody"], "pupil_not_found")],
)
async def test_a_refused_group_assigns_nobody(
    pupils: httpx.AsyncClient, group: list[str], error: str
) -> None:
    await post(pupils, "assign", "s1:assign", class_id="big", pupils=["p1"])
    refused = await post(pupils, "assign", "s2:assign", class_id="small", pupils=group)
    assert (refused.status_code, refused.json()["error"]) == (409, error)
    assert await class_of(pupils, "p3") is None
    assert await class_of(pupils, "p1") == "big"


async def test_unassign_clears_only_the_pupils_of_its_key(pupils: httpx.AsyncClient) -> None:
    await post(pupils, "assign", "s1:assign", class_id="big", pupils=["p1", "p2"])
    await post(pupils, "assign", "s2:assign", class_id="big", pupils=["p3"])
    undone = await post(pupils, "unassign", "s1:assign", class_id="big", pupils=["p1", "p2"])
    assert undone.json()["status"] == "unassigned"
    assert [await class_of(pupils, p) for p in ("p1", "p2", "p3")] == [None, None, "big"]
    # The freed pupils can be assigned again, under another key.
    again = await post(pupils, "assign", "s3:assign", class_id="small", pupils=["p1"])
    assert again.status_code == 200
    assert (await pupils.get("/audit")).json()["ok"] is True


async def test_unassign_first_leaves_a_tombstone_that_refuses_the_late_assign(
    pupils: httpx.AsyncClient,
) -> None:
    first = await post(pupils, "unassign", "s1:assign", class_id="big", pupils=["p1"])
    assert first.json()["status"] == "nothing_to_compensate"
    late = await post(pupils, "assign", "s1:assign", class_id="big", pupils=["p1"])
    assert (late.status_code, late.json()["error"]) == (409, "transaction_compensated")
    assert await class_of(pupils, "p1") is None


async def test_a_class_takes_a_group_up_to_its_capacity_and_refuses_one_more(
    classes: httpx.AsyncClient,
) -> None:
    full = await post(classes, "enrol", "s1:enrol", class_id="small", pupils=["p1", "p2"])
    assert full.json() == {
        "status": "enrolled",
        "class_id": "small",
        "pupils": ["p1", "p2"],
        "enrolled": 2,
        "capacity": 2,
    }
    over = await post(classes, "enrol", "s2:enrol", class_id="small", pupils=["p3"])
    assert (over.status_code, over.json()["error"]) == (409, "class_full")
    roster = (await classes.get("/classes/small")).json()["roster"]
    assert [row["pupil_id"] for row in roster] == ["p1", "p2"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"class_id": "big", "pupils": ["p9", "p1"]}, "pupil_enrolled"),
        ({"class_id": "none", "pupils": ["p9"]}, "class_not_found"),
        ({"class_id": "small", "pupils": ["p7", "p8", "p9"]}, "class_full"),
    ],
)
async def test_a_refused_enrol_adds_nobody(
    classes: httpx.AsyncClient, body: dict[str, Any], error: str
) -> None:
    await post(classes, "enrol", "s1:enrol", class_id="big", pupils=["p1"])
    refused = await post(classes, "enrol", "s2:enrol", **body)
    assert (refused.status_code, refused.json()["error"]) == (409, error)
    listed = (await classes.get("/classes")).json()["classes"]
    assert {c["class_id"]: len(c["roster"]) for c in listed} == {"big": 1, "small": 0}


async def test_void_enrol_settles_both_ways(classes: httpx.AsyncClient) -> None:
    body = {"class_id": "big", "pupils": ["p1"]}
    await post(classes, "enrol", "s1:enrol", **body)
    landed = await post(classes, "void_enrol", "s1:enrol", **body)
    assert landed.json()["status"] == "already_applied"
    voided = await post(classes, "void_enrol", "s2:enrol", class_id="big", pupils=["p2"])
    assert voided.json()["status"] == "voided"
    late = await post(classes, "enrol", "s2:enrol", class_id="big", pupils=["p2"])
    assert (late.status_code, late.json()["error"]) == (409, "transaction_voided")


async def test_a_capacity_is_never_set_below_the_roster(classes: httpx.AsyncClient) -> None:
    await post(classes, "enrol", "s1:enrol", class_id="big", pupils=["p1", "p2"])
    lower = await classes.post("/classes", json={"class_id": "big", "capacity": 1})
    assert (lower.status_code, lower.json()["error"]) == (409, "capacity_below_roster")
    raised = await classes.post("/classes", json={"class_id": "big", "capacity": 3})
    assert raised.json()["capacity"] == 3
    bad = await classes.post("/classes", json={"class_id": "big", "capacity": 0})
    assert bad.status_code == 422


async def test_the_reads_page_by_id(pupils: httpx.AsyncClient) -> None:
    first = (await pupils.get("/pupils", params={"limit": 3})).json()["pupils"]
    rest = (await pupils.get("/pupils", params={"limit": 3, "after": "p3"})).json()["pupils"]
    assert [p["pupil_id"] for p in first + rest] == ["p1", "p2", "p3", "p4"]
    assert (await pupils.get("/pupils/none")).status_code == 404
    assert (await pupils.get("/pupils", params={"limit": 1001})).status_code == 422


def tamper(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql)
    conn.close()


async def test_the_pupils_audit_names_a_pupil_put_in_a_class_by_no_assign(
    pupils: httpx.AsyncClient, tmp_path: Path
) -> None:
    await post(pupils, "assign", "s1:assign", class_id="big", pupils=["p1"])
    assert (await pupils.get("/audit")).json()["ok"] is True
    tamper(
        tmp_path / "pupils.db",
        "UPDATE pupils SET class_id = 'big', assigned_key = 'x:assign' WHERE pupil_id = 'p2'",
    )
    tamper(
        tmp_path / "pupils.db",
        "UPDATE pupils SET class_id = NULL, assigned_key = NULL WHERE pupil_id = 'p1'",
    )
    audit = (await pupils.get("/audit")).json()
    assert audit["ok"] is False
    assert any("'p2'" in v and "no applied assign" in v for v in audit["violations"])
    assert any("assign 's1:assign' applied but ['p1']" in v for v in audit["violations"])


async def test_the_classes_audit_names_a_class_over_its_capacity(
    classes: httpx.AsyncClient, tmp_path: Path
) -> None:
    await post(classes, "enrol", "s1:enrol", class_id="small", pupils=["p1", "p2"])
    assert (await classes.get("/audit")).json()["ok"] is True
    tamper(tmp_path / "classes.db", "UPDATE classes SET capacity = 1 WHERE class_id = 'small'")
    audit = (await classes.get("/audit")).json()
    assert audit["violations"] == ["class 'small' holds 2 pupils, capacity 1"]
