"""The participant kit's SQLite store with group commit beside the one-at-a-time store it replaced,
side by side in one run: inventory `reserve` calls through `ParticipantService.perform` (the
kit's whole path: record lookup, fences, the handler, the record, the COMMIT), in process.

    python -m sagabank_tools.bench.kit_commit [--calls 2000] [--concurrency 1 --concurrency 32]
                                              [--repetitions 3]

Each repetition runs both stores at each concurrency on fresh files, the two in alternating
order, so a slow spell of the machine hits both. A store's figure is calls per second over the
whole run (and the median and p99 latency of one call, and the process's CPU time per call,
which a busy machine moves less than the wall clock); the report gives the medians over the
repetitions, the ratio of the medians (group / one-at-a-time) and the ratio within each
repetition (its spread shows how far the ratio of medians can be trusted). Every answer must be
`reserved` and the inventory's audit clean, or the run stops: a fast wrong store measures nothing.

`_OneAtATimeStore` is the store as it was before group commit (one BEGIN IMMEDIATE ... COMMIT,
one fsync, per call, on one thread), kept here as the baseline only, not in the product.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from repository_after.participant_kit import ParticipantStore, SqliteParticipantStore, Tx
from repository_after.participant_kit.storage import RECORDS_SCHEMA, SqliteTx
from repository_after.services import inventory
from sagabank_tools.bench.measure import percentile

T = TypeVar("T")
STORES = ("one_at_a_time", "group_commit")
SKUS = 20
console = Console(width=120)


class _OneAtATimeStore:
    """The baseline: each call's transaction alone on one thread, WAL and synchronous=FULL."""

    def __init__(self, path: Path, *, schema: Sequence[str]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baseline")
        self._conn = self._executor.submit(self._connect, path).result()
        self._executor.submit(self._run, lambda tx: _create(tx, schema), True).result()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("busy_timeout = 10000", "journal_mode = WAL", "synchronous = FULL"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _run(self, fn: Callable[[Tx], T], writes: bool) -> T:
        self._conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        try:
            value = fn(SqliteTx(self._conn))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return value

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, True)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, False)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)


def _create(tx: Tx, schema: Sequence[str]) -> None:
    for sql in (*RECORDS_SCHEMA, *schema):
        tx.execute(sql)


def open_store(kind: str, path: Path) -> ParticipantStore:
    if kind == "group_commit":
        return SqliteParticipantStore(path, schema=inventory.SCHEMA)
    return _OneAtATimeStore(path, schema=inventory.SCHEMA)


def _order(i: int) -> inventory.ReserveIn:
    """1-3 distinct SKUs of 1-3 units each, the same for both stores."""
    lines = [{"sku": f"sku-{(i + j * 7) % SKUS}", "qty": 1 + (i + j) % 3} for j in range(1 + i % 3)]
    return inventory.ReserveIn.model_validate({"lines": lines})


async def drive(store: ParticipantStore, *, calls: int, concurrency: int) -> dict[str, float]:
    """`calls` reserves, `concurrency` in flight; calls/s and latency of one call (ms)."""
    service = inventory.inventory_service(store)
    for n in range(SKUS):
        await store.transaction(partial(inventory.open_stock, sku=f"sku-{n}", qty=10**9))
    orders = [(f"bench-{i}:reserve", _order(i)) for i in range(calls)]
    latencies: list[float] = []
    queue = iter(orders)

    async def worker() -> None:
        for key, order in queue:
            began = time.perf_counter()
            answer = await service.perform("reserve", key, order)
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200 or answer.json()["status"] != "reserved":
                raise RuntimeError(f"{key}: {answer.status_code} {answer.body!r}")

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    audit = await store.read(inventory.audit)
    if not audit.ok or len(latencies) != calls:
        raise RuntimeError(f"the run is wrong: {audit.as_dict()}")
    return {
        "per_second": calls / wall,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_ms": cpu / calls * 1000,  # both threads (loop and store), per call
    }


async def one_run(kind: str, *, calls: int, concurrency: int, workdir: Path) -> dict[str, float]:
    store = open_store(kind, workdir / f"{kind}-c{concurrency}.db")
    try:
        return await drive(store, calls=calls, concurrency=concurrency)
    finally:
        await store.close()


def run(*, calls: int, concurrencies: Sequence[int], repetitions: int) -> dict[str, Any]:
    """Every repetition's figures per (store, concurrency), their medians and the ratios."""
    each: dict[str, list[dict[str, float]]] = {}
    for rep in range(repetitions):
        for c in concurrencies:
            kinds = STORES if rep % 2 == 0 else STORES[::-1]
            for kind in kinds:
                with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
                    figures = asyncio.run(
                        one_run(kind, calls=calls, concurrency=c, workdir=Path(tmp))
                    )
                each.setdefault(f"{kind} c={c}", []).append(figures)
    medians = {
        key: {name: statistics.median(run[name] for run in runs) for name in runs[0]}
        for key, runs in each.items()
    }
    ratios = {
        f"c={c}": medians[f"group_commit c={c}"]["per_second"]
        / medians[f"one_at_a_time c={c}"]["per_second"]
        for c in concurrencies
    }
    paired = {
        f"c={c}": [
            group["per_second"] / alone["per_second"]
            for group, alone in zip(
                each[f"group_commit c={c}"], each[f"one_at_a_time c={c}"], strict=True
            )
        ]
        for c in concurrencies
    }
    return {"each_repetition": each, "medians": medians, "ratios": ratios, "paired": paired}


def report(results: dict[str, Any], *, calls: int, repetitions: int) -> None:
    table = Table(title=f"kit store: {calls} reserves per run, medians of {repetitions}")
    for column in ("store", "calls/s", "p50 ms", "p99 ms", "CPU ms/call", "each rep. calls/s"):
        table.add_column(column)
    for key, figures in results["medians"].items():
        each = ", ".join(f"{run['per_second']:.0f}" for run in results["each_repetition"][key])
        table.add_row(
            key,
            f"{figures['per_second']:.0f}",
            f"{figures['p50_ms']:.2f}",
            f"{figures['p99_ms']:.2f}",
            f"{figures['cpu_ms']:.3f}",
            each,
        )
    console.print(table)
    for name, ratio in results["ratios"].items():
        within = ", ".join(f"{r:.2f}" for r in results["paired"][name])
        console.print(
            f"group commit / one at a time at {name}: {ratio:.2f} x"
            f" (within each repetition: {within})"
        )


def main(
    calls: Annotated[int, typer.Option(min=1)] = 2000,
    concurrency: Annotated[list[int] | None, typer.Option()] = None,
    repetitions: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    concurrencies = concurrency or [1, 32]
    results = run(calls=calls, concurrencies=concurrencies, repetitions=repetitions)
    report(results, calls=calls, repetitions=repetitions)


if __name__ == "__main__":
    typer.run(main)
