"""The bench's load generators: the seeded transfer plan submitted over loopback HTTP.

sagabank gets the cheapest client at hand (aiohttp); the naive design gets its own client code,
which is part of that design. Both submit `plan.transfer_plan(n, seed)`, so a seed means the same
transfers for every system. A transfer answered with anything but 200 stops the run: its figures
would mean nothing.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx

from sagabank_tools.bench.plan import transfer_plan


async def _sagabank_load(
    url: str, plan: list[tuple[str, str, int]], concurrency: int
) -> tuple[list[float], float]:
    """The load generator for sagabank: aiohttp, `concurrency` keep-alive connections. It is a
    measuring tool, so it is the cheapest client at hand (it shares the machine's two cores with
    the server); the naive design's load is its own client code, which is part of that design."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def one(i: int, s: str, t: str, a: int) -> None:
            async with gate:
                start = time.perf_counter()
                async with session.post(
                    "/transfers",
                    json={"source": s, "target": t, "amount": a},
                    headers={"transaction-id": f"bench-{i}"},
                ) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"transfer {i} answered {r.status}: {body[:200]!r}")
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(i, *p) for i, p in enumerate(plan)))
        return latencies, time.perf_counter() - start


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
