"""The A → B → C failure matrix, run for real: three kit services (`services/abc.py`), each served
by uvicorn on loopback over its own database, and the real orchestrator (SQLite saga log,
`HttpParticipant` with its production transport) driving the `abc` saga over HTTP.

Each row of `abc_matrix.ROWS` sets one service's switch over HTTP (`PUT /switch`), runs one saga,
lets the calls a `slow` fault held go once the saga is at rest, and asserts the EXACT calls the
services answered, in order (one journal numbers them across the three), the saga's final
status and every table's rows (`GET /entries`). docs/sagas.md shows the same table.

Each service's store is chosen in one place, the `databases` fixture (a SQLite file, or a URL
`hosting.open_store` takes): every row runs on SQLite; on MariaDB the seed's rows and every row
where B or C fails (a fresh database per service and row); the rows where C fails on PostgreSQL
too (`CASES`). Another backend of the kit is one more entry there.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.domain.abc import ABC
from repository_after.domain.saga import SagaDefinition, Step, StepKind
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.services.abc import SERVICES, open_abc
from repository_after.services.abc_http import create_abc_app
from repository_after.services.abc_matrix import MAX_ATTEMPTS, ROWS, Row
from repository_after.services.switched import Journal, SwitchedService
from tests.integration.abc_matrix import DOC, doc_table, render
from tests.mariadb import fresh_database as mysql_database
from tests.pg import fresh_database

PARAMS = {"ref": "r-1", "amount": 100}
#: A `slow` call is held until the saga is at rest, so the attempt timeout is what the
#: orchestrator waits on it; every other call is answered in milliseconds on loopback (1 s
#: leaves a loaded CI machine room: a normal call timing out would add a retry no row expects).
ATTEMPT_TIMEOUT = 1.0
FORWARD = RetryPolicy(
    max_attempts=MAX_ATTEMPTS,
    initial_backoff=0.001,
    max_backoff=0.002,
    attempt_timeout=ATTEMPT_TIMEOUT,
    deadline=30,
)
SETTLE = RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_backoff=0.001, attempt_timeout=10)


@dataclass
class Stack:
    services: dict[str, SwitchedService]
    urls: dict[str, str]
    journal: Journal
    orchestrator: Orchestrator


@asynccontextmanager
async def served(apps: dict[str, FastAPI]) -> AsyncIterator[dict[str, str]]:
    """Each app on a free loopback port (bound here, handed to uvicorn); all stopped at once at
    the end (uvicorn looks at its exit flag every 0.1 s: one wait, not one per server)."""
    servers: list[uvicorn.Server] = []
    tasks: list[asyncio.Task[None]] = []
    urls: dict[str, str] = {}
    with ExitStack() as sockets:
        try:
            for name, app in apps.items():
                sock = sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind(("127.0.0.1", 0))
                sock.listen()
                server = uvicorn.Server(uvicorn.Config(app, log_config=None, ws="none"))
                servers.append(server)
                tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
                urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
            async with asyncio.timeout(30):
                while not all(server.started for server in servers):
                    for task in tasks:
                        if task.done():
                            task.result()
                            raise RuntimeError("uvicorn stopped before it started")
                    await asyncio.sleep(0.01)
            yield urls
        finally:
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks)


def _on_mariadb(row: Row) -> bool:
    """The seed's rows where nothing fails or A refuses, and every row where B or C fails: all
    28 took 49 s there against 34 s on SQLite (three fresh databases a row, ~0.55 s; the `slow`
    rows wait their attempt timeouts on any backend); these 20 take ~30 s."""
    return row.service in ("B", "C") or row.name in ("none", "A refuse")


#: The rows run on each store of the kit: every row on SQLite (the default), on MariaDB (the seed
#: system's database) the rows of `_on_mariadb`, the rows where C fails on PostgreSQL. Another
#: backend is one more entry here and in `databases`.
CASES = (
    [pytest.param("sqlite", row, id=f"sqlite-{row.id}") for row in ROWS]
    + [pytest.param("mariadb", row, id=f"mariadb-{row.id}") for row in ROWS if _on_mariadb(row)]
    + [pytest.param("postgres", row, id=f"postgres-{row.id}") for row in ROWS if row.service == "C"]
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="module")
def postgres_databases() -> Iterator[dict[str, str]]:
    """A PostgreSQL database per service, for the module's rows (emptied before each)."""
    with fresh_database() as a, fresh_database() as b, fresh_database() as c:
        yield dict(zip(SERVICES, (a, b, c), strict=True))


@pytest.fixture
def mariadb_databases() -> Iterator[dict[str, str]]:
    """A fresh MariaDB database per service and per row (`tests/mariadb.py`), dropped after it."""
    with mysql_database() as a, mysql_database() as b, mysql_database() as c:
        yield dict(zip(SERVICES, (a, b, c), strict=True))


def _emptied(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def databases(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> dict[str, Path | str]:
    """Where each service keeps its table: what `open_abc` (`hosting.open_store`) takes."""
    if backend == "mariadb":
        return dict(request.getfixturevalue("mariadb_databases"))
    if backend == "postgres":
        urls: dict[str, str] = request.getfixturevalue("postgres_databases")
        return {name: _emptied(url) for name, url in urls.items()}
    return {name: tmp_path / f"{name}.db" for name in SERVICES}


@pytest.fixture
async def stack(tmp_path: Path, databases: dict[str, Path | str]) -> AsyncIterator[Stack]:
    journal = Journal()
    services = {name: open_abc(name, databases[name], journal) for name in SERVICES}
    async with AsyncExitStack() as exits:
        apps = {name: create_abc_app(service) for name, service in services.items()}
        urls = await exits.enter_async_context(served(apps))
        for service in services.values():  # a failed row leaves no call held: uvicorn waits
            exits.push_async_callback(service.release_held)
        participant = HttpParticipant(urls)
        exits.push_async_callback(participant.close)
        log = SqliteSagaLog(tmp_path / "sagas.db")
        exits.push_async_callback(log.close)
        orchestrator = Orchestrator(
            log=log,
            participant=participant,
            definitions={ABC.name: ABC},
            forward=FORWARD,
            settle=SETTLE,
            lease_ttl=60,
        )
        exits.push_async_callback(orchestrator.close)
        yield Stack(services, urls, journal, orchestrator)


@pytest.mark.parametrize(("backend", "row"), CASES)
async def test_each_failure_makes_exactly_the_calls_of_its_row(stack: Stack, row: Row) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        if row.service is not None and row.fault is not None:
            switched = await client.put(
                f"{stack.urls[row.service]}/switch",
                json={"fault": row.fault.value, "times": row.times},
            )
            assert switched.status_code == 200, switched.text
        _, state = await stack.orchestrator.run(ABC.name, PARAMS, saga_id="s-1")
        assert state.status == row.status
        for service in stack.services.values():  # the held calls go now, in arrival order
            await service.release_held()
        assert stack.journal.lines() == list(row.calls)
        for name, url in stack.urls.items():
            rows = (await client.get(f"{url}/entries")).json()["entries"]
            kept = [{"entry": f"s-1:{name.lower()}", **PARAMS}] if name in row.left else []
            assert rows == kept, name
    stored = await stack.orchestrator.get("s-1")
    assert stored.status == row.status  # as the log has it, not only the driver's view


async def test_the_switch_refuses_a_fault_it_does_not_know(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.urls["A"], timeout=10) as client:
        refused = await client.put("/switch", json={"fault": "sometimes", "times": None})
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")
        assert "sometimes" not in refused.text  # the input is not echoed
    _, state = await stack.orchestrator.run(ABC.name, PARAMS, saga_id="s-1")
    assert state.status == "completed"  # the refused setting changed nothing


def test_the_docs_show_the_matrix_this_test_runs() -> None:
    assert doc_table(DOC.read_text()) == render(), (
        "docs/sagas.md's failure matrix differs from tests/integration/abc_matrix.py: "
        "run `python -m tests.integration.abc_matrix --write`"
    )


def test_the_docs_show_the_definition_this_test_runs() -> None:
    section = DOC.read_text().split("## The A → B → C failure matrix", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    shown: dict[str, object] = {
        "SagaDefinition": SagaDefinition,
        "Step": Step,
        "StepKind": StepKind,
    }
    exec(block.group(1), shown)  # the doc's own code, as written there
    assert shown["ABC"] == ABC
