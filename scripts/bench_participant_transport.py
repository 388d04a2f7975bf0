"""Which transport under the participant's httpx client costs the least CPU per exchange.

    PYTHONPATH=. .venv/bin/python scripts/bench_participant_transport.py [--posts 2000]
        [--concurrency 32] [--repetitions 3]

A small FastAPI app answers `POST /debit` under uvicorn in a child process, on loopback. This
process drives `HttpParticipant` (batching off: one POST per call, the path every lone saga
step takes) over each transport in turn, both in the same run, alternating within each
repetition so a slow or fast spell of the machine touches both. For each: POSTs per second,
the client process's CPU per POST (user + system, `time.process_time`), and the server's
(from /proc). Medians over the repetitions are printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.participant_transport import KEEPALIVE_SECONDS, build_transport
from repository_after.domain.saga import Outcome


def httpx_own(max_connections: int) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)


TRANSPORTS: dict[str, Callable[[int], httpx.AsyncBaseTransport]] = {
    "httpx-aiohttp": lambda n: build_transport(max_connections=n),
    "httpx (httpcore)": httpx_own,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Header

    app = FastAPI()

    @app.post("/debit")
    async def debit(
        payload: dict[str, object], transaction_id: str = Header()
    ) -> dict[str, object]:
        return {"status": "applied", "transaction_id": transaction_id, "amount": payload["amount"]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(name: str, url: str, posts: int, concurrency: int, pid: int) -> dict[str, float]:
    participant = HttpParticipant(
        {"accounts": url}, batching=False, transport=TRANSPORTS[name](concurrency)
    )
    body = {"account_id": "acc-01", "amount": 5}

    async def worker(w: int, count: int) -> None:
        for i in range(count):
            result = await participant.call(
                service="accounts",
                operation="debit",
                transaction_id=f"{w}-{i}",
                body=body,
                timeout=10,
            )
            assert result.outcome is Outcome.SUCCEEDED, result

    try:
        await asyncio.gather(*(worker(w, 10) for w in range(concurrency)))  # connections up
        cpu, server, wall = time.process_time(), server_cpu(pid), time.perf_counter()
        await asyncio.gather(*(worker(w, posts // concurrency) for w in range(concurrency)))
        wall = time.perf_counter() - wall
        cpu, server = time.process_time() - cpu, server_cpu(pid) - server
    finally:
        await participant.close()
    done = posts // concurrency * concurrency
    return {
        "posts/s": done / wall,
        "client µs/POST": cpu / done * 1e6,
        "server µs/POST": server / done * 1e6,
    }


async def bench(args: argparse.Namespace, url: str, pid: int) -> None:
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in TRANSPORTS}
    for rep in range(args.repetitions):
        names = list(TRANSPORTS) if rep % 2 == 0 else list(reversed(TRANSPORTS))
        for name in names:
            row = await run(name, url, args.posts, args.concurrency, pid)
            rows[name].append(row)
            figures = "  ".join(f"{k} {v:,.0f}" for k, v in row.items())
            print(f"rep {rep + 1}  {name:18} {figures}", flush=True)  # noqa: T201
    print("medians:")  # noqa: T201
    for name, runs in rows.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"  {name:18} " + "  ".join(f"{k} {v:,.0f}" for k, v in medians.items()))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):  # until the server listens
            try:
                httpx.get(f"{url}/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        import uvloop  # the orchestrator's loop under `sagabank serve`

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(bench(args, url, server.pid))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
