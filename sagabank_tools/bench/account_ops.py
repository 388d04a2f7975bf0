"""The account service's operations in one process, for comparing two versions of its code.

    python -m sagabank_tools.bench.account_ops --sagas 2000 --concurrency 32

runs, on a fresh SQLite file (WAL, synchronous=FULL, the group-commit writer), `--sagas` transfers'
worth of account operations through the service's use case (`perform_operation`, what every
`POST /debit` and each item of `/batch` runs): per saga a debit, a credit and a replay of the
credit, or (one in four) a debit and its compensation; `--concurrency` sagas in flight. It prints
operations per second and CPU microseconds per operation, and checks the books balance.

It touches only what every version of the account service has had (the store, the fault
injector, `perform_operation`), so the same file measures two checkouts side by side:

    PYTHONPATH=<old checkout> python <this file> ...   against   PYTHONPATH=<new checkout> ...

(docs/performance.md, "The account service on the participant kit", has the figures.) HTTP is
left out on purpose: it costs the same in both versions and would hide the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.service_layer import accounts
from repository_after.service_layer.account_operations import perform_operation
from repository_after.service_layer.faults import FaultInjector, FaultMode

ACCOUNTS = 64
OPENING = 1_000_000


async def _saga(store: SqliteAccountStore, faults: FaultInjector, n: int) -> int:
    key = f"bench-{n}"
    a, b = f"acc-{n % ACCOUNTS + 1:02d}", f"acc-{(n + 1) % ACCOUNTS + 1:02d}"
    calls = [OperationRequest(Operation.DEBIT, key, a, 100)]
    if n % 4 == 3:
        calls.append(OperationRequest(Operation.COMPENSATE_DEBIT, key, a, 100))
    else:
        credit = OperationRequest(Operation.CREDIT, key, b, 100)
        calls += [credit, credit]  # the second is a replay
    for request in calls:
        reply = await perform_operation(store=store, faults=faults, request=request)
        if reply.status_code != 200:
            raise SystemExit(f"unexpected answer {reply.status_code} for {request}")
    return len(calls)


async def run(sagas: int, concurrency: int, path: Path) -> tuple[int, float, float]:
    store = SqliteAccountStore(path)
    await store.transaction(
        lambda tx: accounts.open_demo_accounts(tx, count=ACCOUNTS, balance=OPENING)
    )
    faults = FaultInjector(rate=0.0, mode=FaultMode.BEFORE, seed=1)
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> int:
        async with gate:
            return await _saga(store, faults, n)

    wall, cpu = time.perf_counter(), time.process_time()
    done = await asyncio.gather(*(one(n) for n in range(sagas)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    total = await store.read(lambda r: sum(x.balance for x in r.list_accounts()))
    await store.close()
    if total != ACCOUNTS * OPENING:
        raise SystemExit(f"books do not balance: {total}")
    return sum(done), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sagas", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ops, wall, cpu = asyncio.run(run(args.sagas, args.concurrency, Path(tmp) / "accounts.db"))
    sys.stdout.write(
        f"{ops} operations in {wall:.2f} s: {ops / wall:.0f} ops/s, "
        f"{cpu / ops * 1e6:.0f} us CPU per operation; books balance\n"
    )


if __name__ == "__main__":
    main()
