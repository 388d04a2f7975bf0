"""The classes demo, `sagabank demo --saga classes`: N group assignments as sagas over the pupils
and the classes services, with injected faults on both, and every book checked afterwards.

It starts one child process (`sagabank serve --role accounts`) on a free loopback port, which
hosts the pupils service under `/pupils` and the classes service under `/classes` (each on its
own SQLite file beside the process's), and runs the orchestrator in this process; the
orchestrator finds both where the account service hosts them. The pupils service fails
`--fault-rate` of its `assign` and `unassign` calls, the classes service that share of its
`enrol` calls (the pivot: an unknown one is settled by `void_enrol`), all in `--fault-mode`, from
`--seed` (`SAGABANK_PARTICIPANT_FAULTS`). It registers the school's pupils and opens its classes
(`classes_plan`: many groups collide on a pupil, many classes fill up, so refusals and
compensations really happen), runs the plan, then reads both services' books page by page
(`adapters.http_class_books`) and checks them (`service_layer.class_audit`, and this run's groups
against the books: `classes_demo_report`). Exit status 1 on any violation or on a saga not at a
terminal status (parked included).

Durable, like the other demos: the books in `data_dir/demo-classes-{pupils,classes}.db`, the saga
log in `demo-classes-sagas.db`; or all of it in the database of `SAGABANK_DATABASE_URL` when the
user set one. A killed run's sagas are driven to an end first (`demo_support.resume`); each run's
ids carry a run id, so a second run starts a new school on the same books. The child gets fresh
random admin and service tokens each run (reads use the admin one; the orchestrator and the
school's set-up the service one).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from repository_after.adapters.http_class_books import ClassServices, read_class_books
from repository_after.bootstrap import orchestrator_session
from repository_after.config import Settings
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.entrypoints.classes_demo_report import print_report, run_violations, summarise
from repository_after.entrypoints.classes_plan import School, plan_classes
from repository_after.entrypoints.demo_support import (
    DemoRequest,
    console,
    demo_settings,
    durable_url,
    fault_delta,
    finish,
    own_services_fault_mode,
    resume,
    run_plan,
)
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.class_audit import audit_classes
from repository_after.service_layer.faults import FaultMode
from repository_after.services.pupils import MAX_REGISTER

MAX_ASSIGNMENTS = 1000
#: The demo's lease owner: stable across runs, so a restarted demo takes its own leases at once.
CLASSES_DEMO_WORKER_ID = "sagabank-classes-demo"
#: The operations that fail on purpose, per service.
FAULTY = {"pupils": ("assign", "unassign"), "classes": ("enrol",)}


@dataclass(frozen=True)
class ClassesDemoOptions:
    assignments: int
    concurrency: int
    fault_rate: float
    fault_mode: FaultMode
    seed: int
    retries: int


@dataclass(frozen=True)
class Host:
    """The started process's URL and this run's tokens."""

    url: str
    admin_token: str
    service_token: str


@contextmanager
def started_service(opts: ClassesDemoOptions, data_dir: Path) -> Iterator[Host]:
    admin, service = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    faults = {"rate": opts.fault_rate, "mode": opts.fault_mode.value, "seed": opts.seed}
    env = {
        "SAGABANK_DATABASE_URL": durable_url(data_dir, "demo-classes.db"),
        **{
            f"SAGABANK_{name}_DATABASE_URL": ""  # beside the process's: where every role looks
            for name in ("INVENTORY", "ORDERS", "PUPILS", "CLASSES")
        },
        "SAGABANK_ADMIN_TOKEN": admin,
        "SAGABANK_SERVICE_TOKEN": service,
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_DEMO_ACCOUNTS": "0",
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_PARTICIPANT_FAULTS": json.dumps(
            {name: {"operations": list(ops), **faults} for name, ops in FAULTY.items()}
        ),
    }
    log_path = data_dir / "demo-classes-service.log"
    with ServiceProcess(env=env, role="accounts", log_path=log_path) as process:
        yield Host(process.url, admin, service)


def orchestrator_settings(opts: ClassesDemoOptions, host: Host, data_dir: Path) -> Settings:
    return demo_settings(
        retries=opts.retries,
        database_url=durable_url(data_dir, "demo-classes-sagas.db"),
        accounts_url=host.url,
        services={},  # the pupils and classes services where the account service hosts them
        service_token=host.service_token,
        worker_id=CLASSES_DEMO_WORKER_ID,
    )


@asynccontextmanager
async def clients(host: Host, token: str) -> AsyncIterator[ClassServices]:
    auth = {"authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=f"{host.url}/pupils", headers=auth, timeout=10.0) as pupils,
        httpx.AsyncClient(base_url=f"{host.url}/classes", headers=auth, timeout=10.0) as classes,
    ):
        yield ClassServices(pupils, classes)


async def open_school(services: ClassServices, school: School) -> None:
    """Register the school's pupils and open its classes (clients with the service token)."""
    pupils = list(school.pupils)
    for start in range(0, len(pupils), MAX_REGISTER):
        batch = {"pupils": pupils[start : start + MAX_REGISTER]}
        (await services.pupils.post("/pupils", json=batch)).raise_for_status()
    for class_id, capacity in school.classes.items():
        body = {"class_id": class_id, "capacity": capacity}
        (await services.classes.post("/classes", json=body)).raise_for_status()


async def fault_counts(services: ClassServices) -> dict[str, dict[str, int]]:
    counts = {}
    for name, client in (("pupils", services.pupils), ("classes", services.classes)):
        found = (await client.get("/faults")).raise_for_status().json()
        counts.update({f"{name} {op}": n for op, n in found["operations"].items()})
    return counts


async def run_assignments(opts: ClassesDemoOptions, host: Host, data_dir: Path) -> dict[str, Any]:
    school = plan_classes(opts.seed, opts.assignments, uuid.uuid4().hex[:8])
    settings = orchestrator_settings(opts, host, data_dir)
    async with orchestrator_session(settings, observers=()) as orchestrator:
        resumed, left_over = await resume(orchestrator)
        async with clients(host, host.service_token) as writer:
            await open_school(writer, school)
        async with clients(host, host.admin_token) as reader:
            faults_before = await fault_counts(reader)
        states = await run_plan(
            orchestrator,
            CLASS_ASSIGNMENT.name,
            school.groups,
            concurrency=opts.concurrency,
            label="groups",
        )
    async with clients(host, host.admin_token) as reader:
        sagas = {g.saga_id: str(states[g.saga_id].status) for g in school.groups}
        books = await read_class_books(reader, sagas=sagas)
        faults_after = await fault_counts(reader)
    faults = fault_delta(faults_before, faults_after)
    return summarise(
        school,
        states,
        options={**asdict(opts), "fault_mode": opts.fault_mode.value},
        resumed=resumed,
        left_over=left_over,
        faults=faults,
        books=books,
        class_violations=audit_classes(books),
        run_violations=run_violations(school, states, books),
    )


def main(opts: ClassesDemoOptions, data_dir: Path, *, json_output: bool) -> None:
    with started_service(opts, data_dir) as host:
        console.print(
            f"pupils at {host.url}/pupils, classes at {host.url}/classes "
            f"(books and sagas in {data_dir})"
        )
        result = asyncio.run(run_assignments(opts, host, data_dir))
    finish(result, ok=result["ok"], json_output=json_output, report=print_report)


def run(request: DemoRequest) -> None:
    """`sagabank demo --saga classes`: over the service it starts, faults mixed unless
    `--fault-mode` says otherwise."""
    mode = own_services_fault_mode(request, refusal="the classes demo starts its own service")
    opts = ClassesDemoOptions(
        request.assignments,
        request.concurrency,
        request.fault_rate,
        mode,
        request.seed,
        request.retries,
    )
    main(opts, request.data_dir, json_output=request.json_output)
