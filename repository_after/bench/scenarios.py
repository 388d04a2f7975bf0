"""The benchmark scenarios. Each returns a flat dict of figures for one repetition.

- `http_transfers`: end to end over loopback HTTP against a fresh server process (sagabank's
  durable orchestrator + account service in one process, or the naive `repository_before`),
  30 % credit faults, at a given concurrency.
- `noop_sagas`: the orchestrator's own cost: sagas with no-op steps on the durable SQLite log.
- `recovery`: time to drive interrupted sagas (intent logged, no answer) to terminal states.
- `memory`: resident memory after N and M no-op sagas.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bench.measure import LoadFigures, cpu_seconds, rss_mib
from repository_after.domain.saga import Outcome
from repository_after.domain.transfer import DEFINITIONS, TRANSFER
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult

ACCOUNTS = [f"acc-{i:02d}" for i in range(1, 11)]
POLICY = RetryPolicy(max_attempts=1, initial_backoff=0.001, max_backoff=0.01)


def _plan(n: int, seed: int) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    return [(*rng.sample(ACCOUNTS, 2), rng.randint(1, 3_000)) for _ in range(n)]  # type: ignore[misc]


async def _sagabank_transfer(client: httpx.AsyncClient, i: int, s: str, t: str, a: int) -> None:
    r = await client.post(
        "/transfers",
        json={"source": s, "target": t, "amount": a},
        headers={"transaction-id": f"bench-{i}"},
    )
    if r.status_code != 200:
        raise RuntimeError(f"transfer {i} answered {r.status_code}: {r.text[:200]}")


async def _naive_transfer(client: httpx.AsyncClient, i: int, s: str, t: str, a: int) -> None:
    from repository_before.client import transfer

    await transfer(client, f"bench-{i}", s, t, a)


async def _load(
    url: str, impl: str, n: int, concurrency: int, seed: int
) -> tuple[list[float], float]:
    one = _sagabank_transfer if impl == "after" else _naive_transfer
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def timed(i: int, s: str, t: str, a: int) -> None:
            async with gate:
                start = time.perf_counter()
                await one(client, i, s, t, a)
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(timed(i, *p) for i, p in enumerate(_plan(n, seed))))
        return latencies, time.perf_counter() - start


def http_transfers(*, impl: str, n: int, concurrency: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sagabank-bench-") as tmp:
        env = {
            "SAGABANK_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bank.db'}",
            "SAGABANK_CREDIT_FAILURE_RATE": "0.3",
            "SAGABANK_FAULT_SEED": str(seed),
            "SAGABANK_RETRY_ATTEMPTS": "1",
            "SAGABANK_TRANSFER_WAIT": "60",
            "SAGABANK_LOG_LEVEL": "WARNING",
            "SAGABANK_ADMIN_TOKEN": "",
        }
        module = (
            "repository_after.entrypoints.cli" if impl == "after" else ("repository_before.server")
        )
        with ServiceProcess(env=env, role="all", module=module) as server:
            assert server.proc is not None
            server_cpu0, client_cpu0 = cpu_seconds(server.proc.pid), time.process_time()
            latencies, wall = asyncio.run(_load(server.url, impl, n, concurrency, seed))
            server_cpu = cpu_seconds(server.proc.pid) - server_cpu0
            client_cpu = time.process_time() - client_cpu0
    return vars(LoadFigures.of(latencies, wall, client_cpu, server_cpu))


class NoopParticipant:
    """Answers every call at once with success: what is left is the orchestrator's own cost."""

    def __init__(self, *, hang: bool = False) -> None:
        self._hang = hang

    async def call(self, **_: Any) -> CallResult:
        if self._hang:
            await asyncio.Event().wait()
        return CallResult(Outcome.SUCCEEDED, 200, None, {"status": "applied"})


def _orchestrator(path: Path, *, hang: bool = False) -> Orchestrator:
    return Orchestrator(
        log=SqliteSagaLog(path),
        participant=NoopParticipant(hang=hang),
        definitions=DEFINITIONS,
        forward=POLICY,
        settle=POLICY,
        observers=(),
    )


async def _run_sagas(
    orchestrator: Orchestrator, n: int, start: int = 0, concurrency: int = 32
) -> None:
    """`concurrency` workers run sagas start .. start+n-1; no coroutine per saga is created up
    front, so the memory figures measure the orchestrator, not the benchmark's backlog."""
    numbers = iter(range(start, start + n))

    async def worker() -> None:
        for i in numbers:
            await orchestrator.run(
                TRANSFER.name, {"source": "a", "target": "b", "amount": 1}, saga_id=f"noop-{i}"
            )

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def noop_sagas(*, n: int) -> dict[str, float]:
    async def go(path: Path) -> float:
        orchestrator = _orchestrator(path)
        started = time.perf_counter()
        await _run_sagas(orchestrator, n)
        elapsed = time.perf_counter() - started
        await orchestrator.close()
        await orchestrator.log.close()
        return elapsed

    with tempfile.TemporaryDirectory(prefix="sagabank-bench-") as tmp:
        elapsed = asyncio.run(go(Path(tmp) / "sagas.db"))
    return {"sagas_per_second": n / elapsed}


def recovery(*, n: int) -> dict[str, float]:
    async def interrupt(path: Path) -> None:
        crashed = _orchestrator(path, hang=True)
        for i in range(n):
            await crashed.start(
                TRANSFER.name, {"source": "a", "target": "b", "amount": 1}, saga_id=f"rec-{i}"
            )
        while len(await crashed.log.unsettled_ids()) < n or not await _all_intents(crashed, n):
            await asyncio.sleep(0.05)  # waiting for n drivers to log their first intent
        await crashed.close()
        await crashed.log.close()

    async def recover(path: Path) -> float:
        fresh = _orchestrator(path)
        started = time.perf_counter()
        counts = await fresh.recover()
        elapsed = time.perf_counter() - started
        await fresh.close()
        await fresh.log.close()
        if counts.get("completed") != n:
            raise RuntimeError(f"recovery finished {counts}, expected {n} completed")
        return elapsed

    with tempfile.TemporaryDirectory(prefix="sagabank-bench-") as tmp:
        path = Path(tmp) / "sagas.db"
        asyncio.run(interrupt(path))
        elapsed = asyncio.run(recover(path))
    return {"recovered": float(n), "seconds": elapsed}


async def _all_intents(orchestrator: Orchestrator, n: int) -> bool:
    counts = await orchestrator.log.count_by_status()
    return counts.get("debiting", 0) == n


def memory(*, first: int, second: int) -> dict[str, float]:
    async def go(path: Path) -> tuple[float, float]:
        orchestrator = _orchestrator(path)
        await _run_sagas(orchestrator, first)
        after_first = rss_mib()
        await _run_sagas(orchestrator, second - first, start=first)
        after_second = rss_mib()
        await orchestrator.close()
        await orchestrator.log.close()
        return after_first, after_second

    with tempfile.TemporaryDirectory(prefix="sagabank-bench-") as tmp:
        a, b = asyncio.run(go(Path(tmp) / "sagas.db"))
    return {"rss_first_mib": a, "rss_second_mib": b, "growth_pct": (b - a) / a * 100}
