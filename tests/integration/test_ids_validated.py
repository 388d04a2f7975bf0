"""Path ids and the `state` filter are validated before any query, on every backend.

A NUL byte, an over-long value or one outside the id pattern answers 422 `invalid_request`, never
503 `storage_unavailable` (PostgreSQL's driver refuses NUL in text, so before the check a NUL id
reached the database and failed there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from repository_after.config import ProcessRole
from tests.conftest import asgi_client
from tests.integration.observability_support import settings

BAD_IDS = ["a%00b", "x" * 200, "a%20b", "a%0A"]
ROUTES = [
    ("GET", "/accounts/{id}"),
    ("GET", "/accounts/{id}/entries"),
    ("GET", "/transfers/{id}"),
    ("POST", "/transfers/{id}/retry"),
    ("POST", "/transfers/{id}/resolve"),
    ("GET", "/ui/api/transfers/{id}/logs"),
    ("GET", "/sagas/transfer/{id}"),
    ("POST", "/sagas/transfer/{id}/retry"),
    ("POST", "/sagas/transfer/{id}/resolve"),
]


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, object] = {"role": ProcessRole.ALL}
    if request.param != "sqlite":
        overrides["database_url"] = request.getfixturevalue(f"{request.param}_url")
    async for client in asgi_client(settings(tmp_path, "all", **overrides)):
        yield client


@pytest.mark.parametrize("bad", BAD_IDS, ids=["nul", "long", "space", "newline"])
async def test_a_bad_path_id_is_422_before_any_query(app: httpx.AsyncClient, bad: str) -> None:
    for method, template in ROUTES:
        reply = await app.request(method, template.format(id=bad))
        assert reply.status_code == 422, (template, reply.text)
        assert reply.json()["error"] == "invalid_request", template


@pytest.mark.parametrize("bad", ["a%00b", "x" * 200, "no_such_status"])
async def test_a_bad_state_filter_is_422(app: httpx.AsyncClient, bad: str) -> None:
    reply = await app.get(f"/transfers?state={bad}")
    assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request")


async def test_good_ids_and_states_still_read(app: httpx.AsyncClient) -> None:
    assert (await app.get("/accounts/no-such.account:1")).status_code == 404
    missing = await app.get("/transfers/no-such.transfer:1")
    assert (missing.status_code, missing.json()["error"], missing.json()["message"]) == (
        404,
        "transfer_not_found",
        "no transfer 'no-such.transfer:1'",  # names the transfer asked for
    )
    listed = await app.get("/transfers?state=failed_needs_attention")
    assert listed.status_code == 200
