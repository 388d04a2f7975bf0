"""The participant contract (`participant_kit.contract`) run against the classes saga's two
services, standalone (`create_pupils_app`, `create_classes_app`), without and with a service
token; each service's own audit is clean afterwards.

A pupil is assigned once and a roster row is added once per pupil, so every key's group is one
pupil of its own (`PER_KEY` in the list). The pupils service assigns only registered pupils:
the client registers each key's pupil (`POST /pupils`, with the token) just before the request
that names it leaves, single or inside a batch (an httpx request hook, test plumbing only); the
refused body names a pupil nobody registered (409 `pupil_not_found`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest

from repository_after.participant_kit.contract import (
    CHECKS,
    PER_KEY,
    Contract,
    ContractAction,
)
from repository_after.services.classes_http import create_classes_app
from repository_after.services.pupils_http import create_pupils_app

TOKEN = "cl4sses-t0ken"

PUPILS = Contract(
    actions=(
        ContractAction(
            name="assign",
            body={"class_id": "c-1", "pupils": [PER_KEY]},
            other_body={"class_id": "c-2", "pupils": [PER_KEY]},
            invalid_body={"class_id": "c-1", "pupils": []},
            compensation="unassign",
            compensated="unassigned",
            refused_body={"class_id": "c-1", "pupils": ["never-registered"]},
        ),
    ),
)
CLASSES = Contract(
    actions=(
        ContractAction(
            name="enrol",
            body={"class_id": "c-1", "pupils": [PER_KEY]},
            other_body={"class_id": "c-2", "pupils": [PER_KEY]},
            invalid_body={"class_id": "c-1", "pupils": ["twice", "twice"]},
            settlement="void_enrol",
            refused_body={"class_id": "no-such-class", "pupils": ["p"]},
        ),
    ),
)


def _pupils_named(request: httpx.Request) -> list[str]:
    """The per-key pupils an `/assign` (or the `assign` items of a `/batch`) names."""
    if request.method != "POST" or not request.content:
        return []
    body = orjson.loads(request.content)
    if request.url.path == "/assign":
        items = [body]
    elif request.url.path == "/batch":
        items = [item for item in body.get("items", ()) if item.get("operation") == "assign"]
    else:
        return []
    return [p for item in items for p in item.get("pupils", ()) if p.startswith("k-")]


async def _client(
    make: Callable[..., object], path: Path, token: str | None, *, pupils: bool
) -> AsyncIterator[httpx.AsyncClient]:
    app = make(path, token=token)
    auth = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as admin:

            async def register(request: httpx.Request) -> None:
                named = _pupils_named(request)
                if pupils and named:
                    done = await admin.post("/pupils", json={"pupils": named}, headers=auth)
                    assert done.status_code == 200, done.text

            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://localhost",
                event_hooks={"request": [register]},
            ) as client:
                if not pupils:
                    for class_id in ("c-1", "c-2"):
                        body = {"class_id": class_id, "capacity": 1000}
                        opened = await admin.post("/classes", json=body, headers=auth)
                        assert opened.status_code == 200, opened.text
                yield client
                audit = (await admin.get("/audit")).json()
                assert audit["ok"], audit["violations"]


@pytest.fixture(params=[None, TOKEN], ids=["open", "token"])
async def pupils(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_pupils_app, tmp_path / "p.db", request.param, pupils=True):
        client.headers["x-contract-token"] = request.param or ""
        yield client


@pytest.fixture(params=[None, TOKEN], ids=["open", "token"])
async def classes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_classes_app, tmp_path / "c.db", request.param, pupils=False):
        client.headers["x-contract-token"] = request.param or ""
        yield client


def _with_token(contract: Contract, client: httpx.AsyncClient) -> Contract:
    token = client.headers["x-contract-token"] or None
    return Contract(contract.actions, token=token)


@pytest.mark.parametrize("check", CHECKS)
async def test_the_pupils_service_keeps_the_participant_contract(
    pupils: httpx.AsyncClient, check: str
) -> None:
    await CHECKS[check](pupils, _with_token(PUPILS, pupils))


@pytest.mark.parametrize("check", CHECKS)
async def test_the_classes_service_keeps_the_participant_contract(
    classes: httpx.AsyncClient, check: str
) -> None:
    await CHECKS[check](classes, _with_token(CLASSES, classes))


async def test_an_unassign_that_undoes_nothing_is_named_by_the_pupils_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compensation that answers `unassigned` but leaves the pupil in its class passes for
    applied on the wire; the service's own audit (run after every contract fixture) names it."""
    from repository_after.services import pupils as pupils_module

    def lazy(tx: object, key: str, assigned: dict[str, object]) -> dict[str, object]:
        del tx, key
        return {"status": "unassigned", **{k: assigned[k] for k in ("class_id", "pupils")}}

    monkeypatch.setattr(pupils_module, "unassign", lazy)
    app = create_pupils_app(tmp_path / "lazy.db")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            assert (await c.post("/pupils", json={"pupils": ["p1"]})).status_code == 200
            key = {"transaction-id": "s:assign"}
            body = {"class_id": "c-1", "pupils": ["p1"]}
            assert (await c.post("/assign", json=body, headers=key)).status_code == 200
            assert (await c.post("/unassign", json=body, headers=key)).status_code == 200
            audit = (await c.get("/audit")).json()
    assert not audit["ok"]
    assert any("unassign undid" in v for v in audit["violations"]), audit
