"""What the in-process demos (`transfer_demo`, `order_demo`, `classes_demo`) share: the command
line's values (`DemoRequest`), where their data lives, their orchestrator's settings, how they
resume a killed run, drive a plan, read the account service's fault counts and end.

They live here, not in each demo, so that a new saga's demo is its plan, its services and its
report, and nothing else. All keep their data in a durable, named place: `SAGABANK_DATABASE_URL`
when the user set one, else SQLite files in `--data-dir`. All first drive to an end what a killed
previous run left in flight (`resume`), so that the books they read next are the ones those sagas
started against.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import Progress

from repository_after.config import Settings, load_settings
from repository_after.domain.saga import SagaState
from repository_after.service_layer.faults import FaultMode
from repository_after.service_layer.orchestrator import Orchestrator

console = Console(stderr=True)


@dataclass(frozen=True)
class DemoRequest:
    """`sagabank demo`'s options, as given: each saga's demo (`demo.RUNNERS`) reads its own and
    refuses what does not apply to it; `fault_mode` None is the demo's own default."""

    transfers: int
    orders: int
    assignments: int
    concurrency: int
    fault_rate: float
    fault_mode: FaultMode | None
    seed: int
    retries: int
    max_amount: int
    accounts_url: str | None
    data_dir: Path
    json_output: bool
    fail: Sequence[str]
    database_url: Sequence[str]


def durable_url(data_dir: Path, file: str) -> str:
    """`SAGABANK_DATABASE_URL` if the user set one, else the SQLite file `data_dir/file`."""
    return os.environ.get("SAGABANK_DATABASE_URL") or f"sqlite:///{data_dir / file}"


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"


async def injected_faults(client: httpx.AsyncClient, url: str) -> dict[str, int]:
    """Credit faults the account service injected since it started, by point (before/after).

    Read from `GET /admin/faults` where the service has it, else from its `/metrics` counter
    (both with the read token the demo already sends)."""
    reply = await client.get(f"{url}/admin/faults")
    if reply.status_code == 200:
        return {k: int(v) for k, v in reply.json()["injected"].items()}
    text = (await client.get(f"{url}/metrics")).raise_for_status().text
    counts = {"before": 0, "after": 0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("sagabank_injected_faults") and "point" in sample.labels:
                counts[sample.labels["point"]] = int(sample.value)
    return counts


async def resume(orchestrator: Orchestrator) -> tuple[dict[str, int], int]:
    """Drive what a killed previous run left in flight to an end, and say so: (final status
    counts of those sagas, how many are still unsettled after it)."""
    resumed = await orchestrator.recover()
    if resumed:
        console.print(
            f"resumed {sum(resumed.values())} unsettled sagas from a previous run: "
            f"{describe(resumed)}"
        )
    return resumed, len(await orchestrator.log.unsettled_ids())


def own_services_fault_mode(request: DemoRequest, *, refusal: str) -> FaultMode:
    """The fault mode of a demo that starts its own services: `--fault-mode`, else mixed; it
    refuses `--accounts-url` (with `refusal`)."""
    if request.accounts_url is not None:
        raise typer.BadParameter(refusal, param_hint="--saga")
    return request.fault_mode or FaultMode.MIXED


def demo_settings(*, retries: int, **overrides: object) -> Settings:
    """The demo orchestrator's settings: `retries` retries of an unknown outcome, short
    backoffs (a demo waits for nobody), and `overrides`."""
    return load_settings(
        retry_attempts=retries + 1, retry_initial_backoff=0.01, retry_max_backoff=0.2, **overrides
    )


class Planned(Protocol):
    """One planned saga of a demo's plan."""

    @property
    def saga_id(self) -> str: ...

    def params(self) -> dict[str, Any]: ...


async def run_plan(
    orchestrator: Orchestrator,
    saga: str,
    plan: Sequence[Planned],
    *,
    concurrency: int,
    label: str,
) -> dict[str, SagaState]:
    """Run every planned saga of type `saga`, `concurrency` at once, with a progress bar:
    saga id -> its state at the end."""
    gate = asyncio.Semaphore(concurrency)
    states: dict[str, SagaState] = {}
    with Progress(console=console, transient=False) as progress:
        bar = progress.add_task(label, total=len(plan))

        async def one(planned: Planned) -> None:
            async with gate:
                _, state = await orchestrator.run(saga, planned.params(), saga_id=planned.saga_id)
            states[planned.saga_id] = state
            progress.advance(bar)

        await asyncio.gather(*(one(planned) for planned in plan))
    return states


def fault_delta(
    before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    """Faults injected during the run: `after` less `before`, per place and point."""
    return {
        where: {p: n - before.get(where, {}).get(p, 0) for p, n in points.items()}
        for where, points in after.items()
    }


def finish(
    result: dict[str, Any], *, ok: bool, json_output: bool, report: Callable[[dict[str, Any]], None]
) -> None:
    """Print the result (one JSON line, or the demo's `report`); exit status 1 unless `ok`."""
    if json_output:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        report(result)
    if not ok:
        raise typer.Exit(1)
