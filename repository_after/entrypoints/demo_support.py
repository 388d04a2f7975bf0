"""What the transfer demo (`demo`) and the order demo (`order_demo`) share: where their data
lives, how they read the account service's fault counts, and how they resume a killed run.

Both keep their data in a durable, named place: `SAGABANK_DATABASE_URL` when the user set one,
else SQLite files in `--data-dir`. Both first drive to an end what a killed previous run left in
flight (`resume`), so that the books they read next are the ones those sagas started against.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from repository_after.service_layer.orchestrator import Orchestrator

console = Console(stderr=True)


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
