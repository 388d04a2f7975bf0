"""The naive transfer client: debit the source, credit the target, refund the source on error.

    python repository_before/client.py --transfers 200 --fault-mode before --json

It starts its own naive service (`repository_before.server`) on a free loopback port unless
`--accounts-url` is given, runs the same seeded transfer plan as `repository_after/client.py`, and
prints the same summary. The flaw it demonstrates: a 500 from `/credit` is read as "did not
happen". With faults `before` the refund (itself a `/credit`) can fail too, and money vanishes;
with faults `after` the credit did happen, the refund pays the source back, and money is created.
There are no retries, no transaction log and no compensation. Exit status 1 if money moved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


async def transfer(c: httpx.AsyncClient, tx: str, src: str, dst: str, amount: int) -> str:
    debit = await c.post("/debit", headers={"transaction-id": tx}, json=_op(src, amount))
    if not debit.is_success:
        return "rejected"
    credit = await c.post("/credit", headers={"transaction-id": tx}, json=_op(dst, amount))
    if credit.is_success:
        return "completed"
    # Naive: the credit "failed", so give the money back (a refund is just another credit).
    refund = await c.post(
        "/credit", headers={"transaction-id": f"{tx}-refund"}, json=_op(src, amount)
    )
    return "refunded" if refund.is_success else "refund_failed"


def _op(account_id: str, amount: int) -> dict[str, object]:
    return {"account_id": account_id, "amount": amount}


async def run(args: argparse.Namespace, url: str) -> dict[str, object]:
    rng = random.Random(args.seed)
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as c:
        before = (await c.get("/accounts")).raise_for_status().json()
        ids = [a["account_id"] for a in before["accounts"]]
        plan = [
            (*rng.sample(ids, 2), rng.randint(1, args.max_amount)) for _ in range(args.transfers)
        ]
        gate = asyncio.Semaphore(args.concurrency)

        async def one(i: int, src: str, dst: str, amount: int) -> str:
            async with gate:
                return await transfer(c, f"demo-{args.seed}-{i:06d}", src, dst, amount)

        outcomes = Counter(await asyncio.gather(*(one(i, *p) for i, p in enumerate(plan))))
        after = (await c.get("/accounts")).raise_for_status().json()
    return {
        "implementation": "before",
        "transfers": args.transfers,
        "fault_mode": args.fault_mode,
        "fault_rate": args.fault_rate,
        "outcomes": dict(sorted(outcomes.items())),
        "total_before": before["total"],
        "total_after": after["total"],
        "delta": after["total"] - before["total"],
        "conserved": after["total"] == before["total"],
    }


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SAGABANK_CREDIT_FAILURE_RATE": str(args.fault_rate),
        "SAGABANK_CREDIT_FAILURE_MODE": args.fault_mode,
        "SAGABANK_FAULT_SEED": str(args.seed),
    }
    cmd = [sys.executable, "-m", "repository_before.server", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=sys.stderr)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).is_success:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the naive service did not start at {url}")


def main() -> int:
    p = argparse.ArgumentParser(description="naive transfers (no saga): watch money move")
    p.add_argument("--transfers", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--fault-rate", type=float, default=0.3)
    p.add_argument("--fault-mode", choices=["before", "after", "mixed"], default="before")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-amount", type=int, default=30_000)
    p.add_argument("--accounts-url", help="use this service instead of starting one")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = p.parse_args()
    proc, url = (None, args.accounts_url.rstrip("/")) if args.accounts_url else start_server(args)
    try:
        result = asyncio.run(run(args, url))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value}")
    return 0 if result["conserved"] else 1


if __name__ == "__main__":
    sys.exit(main())
