"""Benchmark (not a test): transfers/s on PostgreSQL with 1 and 2 orchestrator workers.

`--backend mariadb` runs the same on MariaDB (`--mysql-admin-url`, docs/mysql.md), `--backend
sqlite` on one SQLite file, for comparison.

For each worker count: a fresh database `sagabank_bench_<hex>` on the server, one account service
and N `--role orchestrator` workers (real processes on loopback, no injected faults), then
`--transfers` transfers POSTed with `--concurrency` requests in flight, spread round-robin over
the workers. A transfer counts when its POST answers with a terminal status (or, for a 202, when
polling shows it terminal). Prints the command used and one line per worker count.

    .venv/bin/python scripts/bench_postgres.py --transfers 1000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from repository_after.domain.saga import TERMINAL
from repository_after.entrypoints.service_process import ServiceProcess

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN_URL = "mysql://root@127.0.0.1:3306/"


def mysql_admin(admin_url: str, sql: str) -> None:
    import pymysql

    from repository_after.adapters.mysql_db import connect_args

    conn = pymysql.connect(**(connect_args(admin_url) | {"database": None, "autocommit": True}))
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def drive(urls: list[str], transfers: int, concurrency: int, prefix: str) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(i: int) -> None:
            url = urls[i % len(urls)]
            body = {"source": f"acc-{i % 10 + 1:02d}", "target": f"acc-{(i + 3) % 10 + 1:02d}"}
            async with gate:
                tx_id = f"{prefix}-{i}"
                r = await client.post(
                    f"{url}/transfers",
                    json={**body, "amount": 1},
                    headers={"transaction-id": tx_id},
                )
                while r.json()["status"] not in TERMINAL:
                    await asyncio.sleep(0.05)  # polling a saga still running
                    r = await client.get(f"{url}/transfers/{tx_id}")

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(transfers)))
        return time.perf_counter() - started


def run(workers: int, args: argparse.Namespace, logs: Path) -> float:
    name = f"sagabank_bench_{uuid.uuid4().hex}"
    if args.backend == "sqlite":  # for comparison: every process on one SQLite file
        url = f"sqlite:///{logs / name}.db"
    elif args.backend == "mariadb":
        mysql_admin(args.mysql_admin_url, f"CREATE DATABASE `{name}`")
        url = args.mysql_admin_url.rstrip("/") + f"/{name}"
    else:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    env = {
        "SAGABANK_DATABASE_URL": url,
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_LOG_LEVEL": "WARNING",
    }
    services: list[ServiceProcess] = []
    try:
        accounts = ServiceProcess(env=env, role="accounts", log_path=logs / "accounts.log")
        services.append(accounts.start())
        for n in range(workers):
            worker = ServiceProcess(
                env={**env, "SAGABANK_ACCOUNTS_URL": accounts.url, "SAGABANK_WORKER_ID": f"w{n}"},
                role="orchestrator",
                log_path=logs / f"w{n}.log",
            )
            services.append(worker.start())
        urls = [s.url for s in services[1:]]
        asyncio.run(drive(urls, min(50, args.transfers), args.concurrency, "warm"))
        return args.transfers / asyncio.run(drive(urls, args.transfers, args.concurrency, "b"))
    finally:
        for service in services:
            service.stop()
        if args.backend == "postgres":
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        if args.backend == "mariadb":
            mysql_admin(args.mysql_admin_url, f"DROP DATABASE IF EXISTS `{name}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--mysql-admin-url", default=MYSQL_ADMIN_URL)
    parser.add_argument("--backend", choices=["postgres", "mariadb", "sqlite"], default="postgres")
    args = parser.parse_args()
    say("$ " + shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as logs:
        for workers in args.workers:
            rate = run(workers, args, Path(logs))
            say(
                f"backend={args.backend} workers={workers} transfers={args.transfers}"
                f" concurrency={args.concurrency}"
                f" -> {rate:.0f} transfers/s"
            )


if __name__ == "__main__":
    main()
