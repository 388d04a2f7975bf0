"""Every write route of every hosted participant, found by walking the app's routes WITH their
prefixes, refuses a caller without the service token, with a wrong one and with the read token.

`test_service_token.test_the_service_token_guards_exactly_the_money_routes` walks the routes
with `test_fastapi_routing._routes`, which drops an included router's prefix (recent FastAPI
keeps each included router as one node): it posts the participants' writes to `/assign`,
`/reserve`, … at the root, gets 404 and so never asks them. This walk uses
`fastapi.routing.iter_route_contexts` (as `test_closed_reads` does for the reads), so a write
added later under `/pupils`, `/classes`, `/inventory` or `/orders`, or in a process of its own,
is asked without being listed here (`/batch` included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from repository_after.config import ProcessRole
from repository_after.entrypoints.app import create_app
from repository_after.service_map import HOSTED_PARTICIPANTS
from tests.conftest import accounts_settings
from tests.integration.test_fastapi_routing import _client

ADMIN, READ, SERVICE = "adm1n", "r3ad", "s3rvice"
ALONE = [
    ProcessRole.PUPILS,
    ProcessRole.CLASSES,
    ProcessRole.INVENTORY,
    ProcessRole.ORDERS,
    ProcessRole.ABC_A,
    ProcessRole.ABC_B,
    ProcessRole.ABC_C,
]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _writes(app: FastAPI, *, under: tuple[str, ...]) -> set[tuple[str, str]]:
    """(method, path) of every write route under those prefixes (the A → B → C services'
    switch is a PUT)."""
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path is not None and route.path.startswith(under)
        for method in WRITES & set(route.methods or ())
    }


@pytest.mark.parametrize("role", [ProcessRole.ALL, *ALONE], ids=lambda r: r.value)
async def test_every_participant_write_refuses_all_but_the_service_token(
    tmp_path: Path, role: ProcessRole
) -> None:
    settings = accounts_settings(
        tmp_path, role=role, admin_token=ADMIN, read_token=READ, service_token=SERVICE
    )
    app = create_app(settings)
    under = (
        tuple(f"{p}/" for p in HOSTED_PARTICIPANTS.values()) if role is ProcessRole.ALL else ("/",)
    )
    writes = _writes(app, under=under)
    if role is ProcessRole.ALL:
        for prefix in HOSTED_PARTICIPANTS.values():  # the walk saw every prefix's batch
            assert ("POST", f"{prefix}/batch") in writes, sorted(writes)
    else:
        assert ("POST", "/batch") in writes, sorted(writes)
    if role in (ProcessRole.ABC_A, ProcessRole.ABC_B, ProcessRole.ABC_C):  # its fault switch
        assert {("PUT", "/switch"), ("POST", "/release")} <= writes, sorted(writes)
    async for client in _client(app):
        for method, template in sorted(writes):
            path = re.sub(r"\{[^}]+\}", "x", template)
            for wrong in (None, "nope", READ):
                headers = {"transaction-id": "guard-1"}
                if wrong:
                    headers["Authorization"] = f"Bearer {wrong}"
                answer = await client.request(method, path, json={}, headers=headers)
                assert answer.status_code == 401, (path, wrong, answer.text)
                assert answer.json()["error"] == "unauthorized", path
            opened = await client.request(
                method,
                path,
                json={},
                headers={"transaction-id": "guard-1", "Authorization": f"Bearer {SERVICE}"},
            )
            assert opened.status_code != 401, (path, opened.text)
