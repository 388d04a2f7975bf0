"""The seed system, `sagabank demo --saga abc`: an orchestrator and the services A, B and C (one
table each) as four processes, and the A → B → C failure table run live against them.

It starts A, B and C as `sagabank serve --role abc-a|abc-b|abc-c` on free loopback ports, each
with its table in its own database (SQLite files `data_dir/demo-abc-{a,b,c}.db` by default, or
the MariaDB / MySQL / PostgreSQL databases of `--database-url`, see `service_databases`), and an
orchestrator process (`sagabank serve`, role `all`) that registers the opt-in saga type `abc`
(`SAGABANK_EXTRA_SAGAS=abc`), calls A, B and C over HTTP (`SAGABANK_SERVICES`), keeps its saga
log in `data_dir/demo-abc-sagas.db` and serves the dashboard (`/ui`: every saga's status and step
history). Its retries are the matrix's: `MAX_ATTEMPTS` attempts of 1 s each, one request per call.

Each row (`services/abc_matrix.py`, the table the failure matrix test runs and docs/sagas.md
shows) sets the three switches over HTTP (`PUT /switch`: the failing service's fault, none on
the others), starts a saga (`POST /sagas/abc`, its id carrying the run id), waits until it is at
rest, lets the calls a `slow` fault held go (`POST /release`), then reads each service's calls of
that saga (`GET /calls`) and its table (`GET /entries`) and compares them with the row: each
service's calls in the order it answered them (the row's calls of that service: the processes
keep separate journals, so the order ACROSS services is the in-process test's to check), the
saga's final status, and which tables keep the saga's row. Exit status 1 if any row differs.
The switches are left off at the end. A killed run leaves at most one saga in flight, which the
orchestrator process's recovery drives to an end at its next start.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from repository_after.domain.abc import ABC
from repository_after.domain.saga import AT_REST
from repository_after.entrypoints.abc_demo_report import print_results
from repository_after.entrypoints.demo_support import DemoRequest, console, finish
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.services.abc import SERVICES
from repository_after.services.abc_matrix import MAX_ATTEMPTS, ROWS, Row, find_row
from repository_after.services.switched import Fault

#: The seed's failure table: nothing fails, then A, B and C each refuse their step.
SEED_ROWS = (find_row(None, None, None), *(find_row(s, Fault.REFUSE, None) for s in SERVICES))
#: `--fail S:unknown` and `S:slow`: the fault before the call is decided.
ALIASES = {"unknown": Fault.UNKNOWN_BEFORE, "slow": Fault.SLOW_BEFORE}
PARAMS = {"ref": "demo", "amount": 100}
#: The longest a row's saga may take to come to rest (a slow row takes ~4 s).
ROW_DEADLINE = 60.0


def pick_rows(fails: Sequence[str]) -> tuple[Row, ...]:
    """The rows `--fail` names: none given, the seed's four; `all`, every row of the matrix;
    else each of `none` or `S:FAULT` or `S:FAULT:once` (S in A, B, C; FAULT a `Fault` or
    `unknown` / `slow`)."""
    if not fails:
        return SEED_ROWS
    if "all" in fails:
        return ROWS
    rows = []
    for value in fails:
        if value == "none":
            rows.append(find_row(None, None, None))
            continue
        service, _, rest = value.partition(":")
        fault_name, _, once = rest.partition(":")
        fault = ALIASES.get(fault_name) or next((f for f in Fault if f.value == fault_name), None)
        if service not in SERVICES or fault is None or once not in ("", "once"):
            raise typer.BadParameter(
                f"{value[:64]!r}: expected none, all, or S:FAULT[:once] with S one of "
                f"{', '.join(SERVICES)} and FAULT one of unknown, slow, "
                f"{', '.join(f.value for f in Fault)}",
                param_hint="--fail",
            )
        try:
            rows.append(find_row(service, fault, 1 if once else None))
        except KeyError:
            raise typer.BadParameter(
                f"the matrix has no row {value!r}", param_hint="--fail"
            ) from None
    return tuple(dict.fromkeys(rows))  # a row named twice runs once (its saga id is the row's)


def service_databases(urls: Sequence[str], data_dir: Path) -> dict[str, str]:
    """Each service's database URL: SQLite files in `data_dir` by default; one URL with
    `{service}` in it (replaced by a, b, c: `mysql://root@127.0.0.1:3306/abc_{service}`); or
    three URLs, A's, B's and C's. The databases must exist; each service needs its own (their
    tables share a name)."""
    if not urls:
        # `sagabank serve` puts role abc-a's file beside the URL's: demo.db -> demo-abc-a.db.
        return dict.fromkeys(SERVICES, f"sqlite:///{data_dir / 'demo.db'}")
    if len(urls) == 1 and "{service}" in urls[0]:
        return {name: urls[0].replace("{service}", name.lower()) for name in SERVICES}
    if len(urls) == len(SERVICES) and len(set(urls)) == len(urls):
        return dict(zip(SERVICES, urls, strict=True))
    raise typer.BadParameter(
        "give one URL with {service} in it, or three distinct URLs (A's, B's, C's): each "
        "service keeps its table in its own database",
        param_hint="--database-url",
    )


@dataclass(frozen=True)
class Cluster:
    services: dict[str, str]  # A, B, C -> URL
    orchestrator: str
    token: str  # the service token of this run: A, B and C take it, the orchestrator sends it


@contextmanager
def started(databases: dict[str, str], data_dir: Path) -> Iterator[Cluster]:
    """A, B and C, then the orchestrator pointed at them; all stopped on the way out."""
    token = secrets.token_urlsafe(24)
    closed = {"SAGABANK_ADMIN_TOKEN": "", "SAGABANK_READ_TOKEN": ""}  # reads open: loopback
    with ExitStack() as stack:
        services = {
            name: ServiceProcess(
                env={
                    **closed,
                    "SAGABANK_DATABASE_URL": databases[name],
                    "SAGABANK_SERVICE_TOKEN": token,
                },
                role=f"abc-{name.lower()}",
                log_path=data_dir / f"demo-abc-{name.lower()}.log",
            )
            for name in SERVICES
        }
        for process in services.values():
            stack.callback(process.stop)  # also the ones started when another one failed
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(ServiceProcess.start, services.values()))
        urls = {name: process.url for name, process in services.items()}
        orchestrator = ServiceProcess(
            env={
                **closed,
                "SAGABANK_DATABASE_URL": f"sqlite:///{data_dir / 'demo-abc-sagas.db'}",
                "SAGABANK_EXTRA_SAGAS": ABC.name,
                "SAGABANK_SERVICES": json.dumps(
                    {name: {"url": url, "token": token} for name, url in urls.items()}
                ),
                "SAGABANK_SERVICE_TOKEN": "",  # the account service it hosts takes none
                "SAGABANK_DEMO_ACCOUNTS": "0",
                "SAGABANK_RETRY_ATTEMPTS": str(MAX_ATTEMPTS),
                "SAGABANK_RETRY_INITIAL_BACKOFF": "0.001",
                "SAGABANK_RETRY_MAX_BACKOFF": "0.002",
                "SAGABANK_ATTEMPT_TIMEOUT": "1.0",
                "SAGABANK_PARTICIPANT_MAX_IN_FLIGHT": "0",  # one request per call, as the matrix
            },
            role="all",
            log_path=data_dir / "demo-abc-orchestrator.log",
        )
        stack.callback(orchestrator.stop)
        orchestrator.start()
        yield Cluster(urls, orchestrator.url, token)


async def _switch(client: httpx.AsyncClient, cluster: Cluster, row: Row | None) -> None:
    """The row's fault on its failing service, none on the others (None: none anywhere)."""
    for name, url in cluster.services.items():
        body: dict[str, Any] = {"fault": None}
        if row is not None and row.service == name and row.fault is not None:
            body = {"fault": row.fault.value, "times": row.times}
        reply = await client.put(f"{url}/switch", json=body)
        reply.raise_for_status()


async def _at_rest(client: httpx.AsyncClient, url: str, saga_id: str) -> dict[str, Any]:
    headers = {"transaction-id": saga_id}
    view: dict[str, Any] = (
        (await client.post(f"{url}/sagas/{ABC.name}", json=PARAMS, headers=headers))
        .raise_for_status()
        .json()
    )
    deadline = time.monotonic() + ROW_DEADLINE
    while view["status"] not in AT_REST and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # polling the orchestrator's answer, as an operator would
        reply = await client.get(f"{url}/sagas/{ABC.name}/{saga_id}")
        view = reply.raise_for_status().json()
    return view


def expected_calls(row: Row) -> dict[str, list[str]]:
    """Each service's calls of the row, in the order it answers them."""
    return {name: [c for c in row.calls if c.startswith(f"{name}.")] for name in SERVICES}


def matches(row: Row, *, status: str, calls: dict[str, list[str]], kept: dict[str, bool]) -> bool:
    """Whether what the processes showed of a row's saga is the row: its final status, each
    service's calls, and which tables keep its row."""
    return (
        status == row.status
        and calls == expected_calls(row)
        and kept == {name: name in row.left for name in SERVICES}
    )


async def run_row(
    client: httpx.AsyncClient, cluster: Cluster, row: Row, run_id: str
) -> dict[str, Any]:
    saga_id = f"abc-{run_id}-{row.id}"
    await _switch(client, cluster, row)
    view = await _at_rest(client, cluster.orchestrator, saga_id)
    for url in cluster.services.values():  # the held calls go now, each answered
        (await client.post(f"{url}/release")).raise_for_status()
    calls: dict[str, list[str]] = {}
    kept: dict[str, bool] = {}
    for name, url in cluster.services.items():
        noted = (await client.get(f"{url}/calls")).raise_for_status().json()["calls"]
        calls[name] = [c["call"] for c in noted if c["key"].startswith(f"{saga_id}:")]
        rows = (await client.get(f"{url}/entries")).raise_for_status().json()["entries"]
        kept[name] = any(r["entry"] == f"{saga_id}:{name.lower()}" for r in rows)
    expected = expected_calls(row)
    ok = matches(row, status=view["status"], calls=calls, kept=kept)
    return {
        "row": row.name,
        "saga_id": saga_id,
        "status": view["status"],
        "expected_status": row.status,
        "calls": calls,
        "expected_calls": expected,
        "rows_left": "".join(name for name in SERVICES if kept[name]),
        "expected_rows_left": row.left,
        "ok": ok,
    }


async def run_rows(cluster: Cluster, rows: Sequence[Row]) -> list[dict[str, Any]]:
    run_id = uuid.uuid4().hex[:8]
    auth = {"authorization": f"Bearer {cluster.token}"}
    async with httpx.AsyncClient(timeout=30.0, headers=auth) as client:
        try:
            return [await run_row(client, cluster, row, run_id) for row in rows]
        finally:
            await _switch(client, cluster, None)


def main(
    rows: Sequence[Row], databases: dict[str, str], data_dir: Path, *, json_output: bool
) -> None:
    with started(databases, data_dir) as cluster:
        services = ", ".join(f"{name} at {url}" for name, url in cluster.services.items())
        console.print(f"{services}; orchestrator and dashboard at {cluster.orchestrator}/ui")
        results = asyncio.run(run_rows(cluster, rows))
    ok = all(r["ok"] for r in results)
    finish(
        {"rows": results, "ok": ok},
        ok=ok,
        json_output=json_output,
        report=lambda result: print_results(result["rows"]),
    )


def run(request: DemoRequest) -> None:
    """`sagabank demo --saga abc`: the rows of `--fail` over the databases of `--database-url`."""
    rows = pick_rows(request.fail)
    data_dir = request.data_dir.resolve()
    main(
        rows,
        service_databases(request.database_url, data_dir),
        data_dir,
        json_output=request.json_output,
    )
