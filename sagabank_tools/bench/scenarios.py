"""The benchmark scenarios. Each returns a flat dict of figures for one repetition.

- `http_transfers`: end to end over loopback HTTP (load generators in `loads.py`) against fresh
  server processes (sagabank as two services, or in one process, or the naive
  `repository_before`), 30 % credit faults, at a given concurrency. python-cqrs's engine under
  the same load is in `cqrs_saga`.
- `noop_sagas`: the orchestrator's own cost: sagas with no-op steps on the durable SQLite log.
- `recovery`: time to drive interrupted sagas (intent logged, no answer) to terminal states.
- `memory`: resident memory after N and M no-op sagas.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import uvloop

from repository_after.bootstrap import build_orchestrator
from repository_after.config import Settings
from repository_after.domain.saga import Outcome
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.runtime_tuning import tuned_runtime
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_ports import CallResult
from sagabank_tools.bench.loads import run_load
from sagabank_tools.bench.measure import LoadFigures, cpu_seconds, rss_mib

T = TypeVar("T")


def server_env(seed: int) -> dict[str, str]:
    """Every sagabank server of the bench: 30 % of credits fail before anything changes (the
    default fault mode), seeded; one attempt per call (no retries, so the figures compare with
    the naive client and python-cqrs, which retry nothing); an answer waits up to 60 s for the
    saga to settle; no tokens."""
    return {
        "SAGABANK_CREDIT_FAILURE_RATE": "0.3",
        "SAGABANK_FAULT_SEED": str(seed),
        "SAGABANK_RETRY_ATTEMPTS": "1",
        "SAGABANK_TRANSFER_WAIT": "60",
        "SAGABANK_LOG_LEVEL": "WARNING",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",  # the bench measures the open loopback default
    }


def _servers(stack: ExitStack, impl: str, tmp: Path, seed: int) -> tuple[str, list[int]]:
    """Start the system under test; returns the URL the load goes to and the server pids.

    `after`: sagabank as deployed, two services (account service, orchestrator), each with its
    own durable SQLite file; `after_all`: both in one process (`--role all`, one shared SQLite
    writer); `before`: the naive server."""
    env = server_env(seed)
    if impl == "before":
        naive = stack.enter_context(ServiceProcess(env=env, module="repository_before.server"))
        return naive.url, [server_pid(naive)]
    if impl == "after_all":
        env["SAGABANK_DATABASE_URL"] = f"sqlite:///{tmp / 'bank.db'}"
        one = stack.enter_context(ServiceProcess(env=env, role="all"))
        return one.url, [server_pid(one)]
    accounts_env = {**env, "SAGABANK_DATABASE_URL": f"sqlite:///{tmp / 'accounts.db'}"}
    accounts = stack.enter_context(ServiceProcess(env=accounts_env, role="accounts"))
    orchestrator_env = {
        **env,
        "SAGABANK_DATABASE_URL": f"sqlite:///{tmp / 'sagas.db'}",
        "SAGABANK_ACCOUNTS_URL": accounts.url,
    }
    orchestrator = stack.enter_context(ServiceProcess(env=orchestrator_env, role="orchestrator"))
    return orchestrator.url, [server_pid(accounts), server_pid(orchestrator)]


def server_pid(server: ServiceProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


def http_transfers(*, impl: str, n: int, concurrency: int, seed: int) -> dict[str, float]:
    """`impl`: `after` (two services), `after_all` (one process) or `before` (naive)."""
    with tempfile.TemporaryDirectory(prefix="sagabank-bench-") as tmp, ExitStack() as stack:
        url, pids = _servers(stack, impl, Path(tmp), seed)
        server_cpu0, client_cpu0 = sum(map(cpu_seconds, pids)), time.process_time()
        latencies, wall = asyncio.run(
            run_load(url, impl=impl, n=n, concurrency=concurrency, seed=seed)
        )
        server_cpu = sum(map(cpu_seconds, pids)) - server_cpu0
        client_cpu = time.process_time() - client_cpu0
    return vars(LoadFigures.of(latencies, wall, client_cpu, server_cpu))


def on_server_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run an in-process orchestrator scenario as under `sagabank serve`: on uvloop (uvicorn
    picks it when installed; `uvicorn[standard]` installs it), with the garbage collector and the
    switch interval tuned (`entrypoints/runtime_tuning.py`), and CPython's settings back
    afterwards."""
    with tuned_runtime():
        return uvloop.run(coro)


class NoopParticipant:
    """Answers every call at once with success: what is left is the orchestrator's own cost."""

    def __init__(self, *, hang: bool = False) -> None:
        self._hang = hang

    async def call(self, **_: Any) -> CallResult:
        if self._hang:
            await asyncio.Event().wait()
        return CallResult(Outcome.SUCCEEDED, 200, None, {"status": "applied"})


def _orchestrator(path: Path, *, hang: bool = False) -> Orchestrator:
    """On the durable SQLite log, one attempt per call (the participant never fails); port 0
    makes the worker id host-pid, so a second orchestrator of this process reclaims the first
    one's sagas at once, as a restarted worker does."""
    settings = Settings(
        database_url=f"sqlite:///{path}",
        port=0,
        retry_attempts=1,
        settle_attempts=1,
        retry_initial_backoff=0.001,
        retry_max_backoff=0.01,
    )
    return build_orchestrator(settings, participant=NoopParticipant(hang=hang), observers=())


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
        elapsed = on_server_loop(go(Path(tmp) / "sagas.db"))
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
        on_server_loop(interrupt(path))
        elapsed = on_server_loop(recover(path))
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
        a, b = on_server_loop(go(Path(tmp) / "sagas.db"))
    return {"rss_first_mib": a, "rss_second_mib": b, "growth_pct": (b - a) / a * 100}
