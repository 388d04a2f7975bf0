"""The classes saga's services on PostgreSQL and MariaDB (`participant_kit.postgres`, `.mysql`,
`server_url`): both keep the whole
participant contract on one database (as a hosted pair shares it), and two replicas of each on
one database never overfill a class nor put a pupil in two classes when groups race for the last
places and for the same pupils (the class row and each pupil row locked, `tx.for_update`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from repository_after.participant_kit import ParticipantService
from repository_after.participant_kit.contract import Contract, run_contract
from repository_after.services import classes, pupils
from repository_after.services.classes_http import create_classes_app
from repository_after.services.pupils import GroupIn
from repository_after.services.pupils_http import create_pupils_app
from tests.integration.test_classes_contract import CLASSES, PUPILS, _pupils_named


async def test_both_services_on_one_server_database_keep_the_contract(
    server_url: str,
) -> None:
    pupils_app, classes_app = create_pupils_app(server_url), create_classes_app(server_url)
    async with (
        pupils_app.router.lifespan_context(pupils_app),
        classes_app.router.lifespan_context(classes_app),
    ):
        p_transport = httpx.ASGITransport(app=pupils_app)
        c_transport = httpx.ASGITransport(app=classes_app)
        async with (
            httpx.AsyncClient(transport=p_transport, base_url="http://localhost") as admin,
            httpx.AsyncClient(transport=c_transport, base_url="http://localhost") as c,
        ):

            async def register(request: httpx.Request) -> None:
                if named := _pupils_named(request):
                    assert (await admin.post("/pupils", json={"pupils": named})).is_success

            async with httpx.AsyncClient(
                transport=p_transport,
                base_url="http://localhost",
                event_hooks={"request": [register]},
            ) as p:
                await run_contract(p, Contract(PUPILS.actions))
            for class_id in ("c-1", "c-2"):
                opened = await c.post("/classes", json={"class_id": class_id, "capacity": 1000})
                assert opened.is_success
            await run_contract(c, Contract(CLASSES.actions))
            for client in (admin, c):
                report = (await client.get("/audit")).json()
                assert report["ok"], report["violations"]


@pytest.fixture
async def replicas(server_url: str) -> AsyncIterator[tuple[ParticipantService, ...]]:
    services = (
        pupils.open_pupils(server_url),
        pupils.open_pupils(server_url),
        classes.open_classes(server_url),
        classes.open_classes(server_url),
    )
    try:
        yield services
    finally:
        for service in services:
            await service.store.close()


def group(class_id: str, *members: str) -> GroupIn:
    return GroupIn.model_validate({"class_id": class_id, "pupils": list(members)})


async def test_two_replicas_never_overfill_a_class(
    replicas: tuple[ParticipantService, ...],
) -> None:
    *_, a, b = replicas
    await a.store.transaction(lambda tx: classes.open_class(tx, "c", 7))
    calls = [
        (a, b)[i % 2].perform("enrol", f"s{i}:enrol", group("c", f"p{i}", f"q{i}"))
        for i in range(30)
    ]
    answers = await asyncio.gather(*calls)
    codes = sorted(x.status_code for x in answers)
    assert codes == [200] * 3 + [409] * 27  # 3 groups of 2 fit in 7 places, a 4th does not
    found = await b.store.read(lambda tx: classes.find_class(tx, "c"))
    assert found is not None
    assert len(found["roster"]) == 6
    report = await b.store.read(classes.audit)
    assert report.ok, report.violations


async def test_two_replicas_never_put_a_pupil_in_two_classes(
    replicas: tuple[ParticipantService, ...],
) -> None:
    a, b, *_ = replicas
    await a.store.transaction(lambda tx: pupils.register(tx, ["p1", "p2", "p3"]))
    groups = [group(f"c{i}", *(["p1", "p2"], ["p2", "p3"], ["p3", "p1"])[i % 3]) for i in range(12)]
    answers = await asyncio.gather(
        *((a, b)[i % 2].perform("assign", f"s{i}:assign", g) for i, g in enumerate(groups))
    )
    assert sorted(x.status_code for x in answers) == [200] + [409] * 11
    listed = await b.store.read(lambda tx: pupils.list_pupils(tx, limit=10, after=None))
    assert sum(p["class_id"] is not None for p in listed) == 2
    report = await b.store.read(pupils.audit)
    assert report.ok, report.violations
