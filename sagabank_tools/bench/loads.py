"""The bench's load generators: the seeded plans submitted over loopback HTTP.

sagabank gets the cheapest client at hand (aiohttp, `post_all`, also the order scenario's load);
the naive design gets its own client code, which is part of that design. Both submit
`plan.transfer_plan(n, seed)`, so a seed means the same transfers for every system. A transfer
answered with anything but 200 stops the run: its figures would mean nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import httpx

from sagabank_tools.bench.plan import transfer_plan

#: Reads one answer (transaction id, status, body); raises to stop the run.
Check = Callable[[str, int, bytes], None]


async def post_all(
    url: str, path: str, requests: Sequence[tuple[str, Any]], concurrency: int, check: Check
) -> tuple[list[float], float]:
    """The load generator for sagabank: each (transaction id, JSON body) POSTed to `path` over
    aiohttp, `concurrency` keep-alive connections, `check` reading each answer; (each request's
    latency, wall time). It is a measuring tool, so it is the cheapest client at hand (it shares
    the machine's two cores with the server); the naive design's load is its own client code,
    which is part of that design."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def one(tx_id: str, body: Any) -> None:
            async with gate:
                start = time.perf_counter()
                async with session.post(path, json=body, headers={"transaction-id": tx_id}) as r:
                    check(tx_id, r.status, await r.read())
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(*request) for request in requests))
        return latencies, time.perf_counter() - start


def _transfer_answered(tx_id: str, status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"transfer {tx_id} answered {status}: {body[:200]!r}")


async def _sagabank_load(
    url: str, plan: list[tuple[str, str, int]], concurrency: int
) -> tuple[list[float], float]:
    requests = [
        (f"bench-{i}", {"source": s, "target": t, "amount": a}) for i, (s, t, a) in enumerate(plan)
    ]
    return await post_all(url, "/transfers", requests, concurrency, _transfer_answered)


async def _naive_load(
    url: str, plan: list[tuple[str, str, int]], concurrency: int
) -> tuple[list[float], float]:
    """The naive design's own client (`repository_before.client.transfer`), as it ships."""
    from repository_before.client import transfer

    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one(i: int, s: str, t: str, a: int) -> None:
            async with gate:
                start = time.perf_counter()
                await transfer(client, f"bench-{i}", s, t, a)
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(i, *p) for i, p in enumerate(plan)))
        return latencies, time.perf_counter() - start


async def run_load(
    url: str, *, impl: str, n: int, concurrency: int, seed: int
) -> tuple[list[float], float]:
    """(each transfer's latency, wall time) of n planned transfers against `url`."""
    load = _naive_load if impl == "before" else _sagabank_load
    return await load(url, transfer_plan(n, seed), concurrency)
