"""The orchestrator process is SIGKILLed while its calls are in flight, several times, and
restarted.

Real processes on loopback: one account service (credit faults 30 %, mixed modes) and one
orchestrator (`--role orchestrator`, its own SQLite saga log), talking through the chaos tools'
proxy (`sagabank_tools.chaos.proxy`, no faults scheduled) run by this test. The proxy is where the
kill is triggered, from the participant's side: from the n-th operation of a round on, it lets
the account service apply each operation but holds its answer, and the first held answer tells the
test "a call is in flight" (applied by the participant, not yet heard by the orchestrator); the test
SIGKILLs the orchestrator at that moment, then lets the held answers go to the dead process.
A kill after N client answers (this test's first form) always found the sagas waiting to retry,
never mid-call, and passed a recovery that treats an in-flight action as "did not happen".

After each kill the orchestrator restarts (recovery runs at start-up) and the client re-submits
every transfer whose request died, with the same id, as a real client would. At the end every
saga is terminal, money is conserved, nothing is applied twice or under another key, each saga's
outcome matches the account service's records, at least one kill found a call whose intent was
logged with no outcome (read from the saga log at the kill), and every call in flight at a kill
was asked again, first thing, with the same key after the restart.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from repository_after.domain.saga import AT_REST
from repository_after.entrypoints.service_process import ServiceProcess
from sagabank_tools.chaos.messages import Reply
from sagabank_tools.chaos.proxy import FaultProxy
from sagabank_tools.chaos.schedule import Schedule
from tests.e2e.conftest import Launcher

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

TRANSFERS = 60
#: Per round: the n-th operation the account service answers for the current orchestrator
#: process starts the hold: its answer and every later one are held, and the kill follows.
HOLD_FROM = (2, 9, 20)
#: How long the test waits for a held answer before it calls the round a failure.
HOLD_WAIT = 30.0


def plan() -> list[tuple[str, dict[str, object]]]:
    return [
        (
            f"kill-{i:03d}",
            {
                "source": f"acc-{i % 10 + 1:02d}",
                "target": f"acc-{(i + 3) % 10 + 1:02d}",
                "amount": 100 + i,
            },
        )
        for i in range(TRANSFERS)
    ]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One operation the account service answered through the proxy."""

    generation: int  # the orchestrator process that sent it: 0, then one more per restart
    transaction_id: str
    operation: str
    status: int
    replayed: bool


class AnswerGate:
    """The proxy's `on_answer`, run in the proxy's event loop: records every delivery and, once
    armed, holds the answers from the `hold_from`-th delivery of the current process on, until
    `release`. `holding` (a thread-safe event) tells the test a call is in flight."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.held: list[Delivery] = []
        self.holding = threading.Event()
        self._generation = 0
        self._count = 0
        self._hold_from: int | None = None
        self._release = asyncio.Event()

    def arm(self, hold_from: int) -> None:
        self._hold_from = hold_from
        self.holding.clear()

    def release(self) -> None:
        """Let the held answers go (to a dead process) and count the next process's calls."""
        self._hold_from = None
        self._release.set()
        self._release = asyncio.Event()
        self._generation += 1
        self._count = 0

    async def __call__(self, transaction_id: str, operation: str, reply: Reply) -> None:
        delivery = Delivery(
            self._generation, transaction_id, operation, reply.status, reply.replayed
        )
        self.deliveries.append(delivery)
        self._count += 1
        if self._hold_from is not None and self._count >= self._hold_from:
            release = self._release
            self.held.append(delivery)
            self.holding.set()
            await release.wait()


class ProxyThread:
    """The chaos proxy, without faults, in a thread of its own: its event loop keeps answering
    while the test blocks on processes (start-up, kill)."""

    def __init__(self, upstream: str) -> None:
        self.gate = AnswerGate()
        self.url = ""
        self._upstream = upstream
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        proxy = FaultProxy(
            schedule=Schedule(seed=0, families=()), upstream=self._upstream, on_answer=self.gate
        )
        self.url = await proxy.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await proxy.close()

    def run(self, fn: Any, *args: object) -> None:
        """Run `fn(*args)` in the proxy's event loop and wait until it has run."""
        assert self._loop is not None
        done = threading.Event()

        def call() -> None:
            try:
                fn(*args)
            finally:
                done.set()

        self._loop.call_soon_threadsafe(call)
        assert done.wait(10), f"the proxy's loop did not run {fn}"

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self.run(self.gate.release)
            self.run(self._stop.set)
        self._thread.join(timeout=30)


async def submit_round(
    url: str,
    batch: list[tuple[str, dict[str, object]]],
    orchestrator: ServiceProcess,
    holding: threading.Event | None,
) -> list[str]:
    """Submit `batch` concurrently; with `holding`, SIGKILL the orchestrator as soon as the proxy
    holds an answer (a call is in flight).

    Returns the ids whose request did not get an answer (to be re-submitted)."""
    died: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(tx_id: str, body: dict[str, object]) -> None:
            try:
                r = await client.post("/transfers", json=body, headers={"transaction-id": tx_id})
                assert r.status_code in (200, 202), r.text
            except httpx.TransportError:
                died.append(tx_id)

        async def kill_when_a_call_is_in_flight(held: threading.Event) -> None:
            in_flight = await asyncio.to_thread(held.wait, HOLD_WAIT)
            assert in_flight, f"no answer held within {HOLD_WAIT} s: no call came to be in flight"
            await asyncio.to_thread(orchestrator.kill)

        killer = [] if holding is None else [kill_when_a_call_is_in_flight(holding)]
        await asyncio.gather(*(one(t, b) for t, b in batch), *killer)
    return died


def last_events(db: Path) -> dict[str, dict[str, Any]]:
    """Each saga's last logged event, read from the (dead) orchestrator's SQLite saga log."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT saga_id, data FROM saga_events ORDER BY saga_id, seq")
        return {saga_id: json.loads(data) for saga_id, data in rows}
    finally:
        conn.close()


def settled_statuses(url: str, ids: list[str], deadline: float) -> dict[str, str]:
    """Every saga's status once all are at rest (terminal or parked: a parked one is reported,
    not waited for, so a broken recovery fails here at once rather than at the deadline)."""
    statuses: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            for tx_id in ids:
                if statuses.get(tx_id) not in AT_REST:
                    r = client.get(f"/transfers/{tx_id}")
                    assert r.status_code in (200, 202), r.text
                    statuses[tx_id] = r.json()["status"]
            if all(s in AT_REST for s in statuses.values()):
                return statuses
            time.sleep(0.2)  # polling a remote state, not standing in for a synchronisation
    raise AssertionError(f"unsettled after the deadline: {statuses}")


def recovery_lines(log: Path, expected: int, timeout: float = 30.0) -> list[str]:
    """The "recovery: N unsettled" counts logged so far, once `expected` starts have logged one:
    a server answers /health before its worker loop has finished its first (recovery) claim."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(r"recovery: (\d+) unsettled", log.read_text())
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)  # polling a log file another process writes


def applied_operations(db: Path) -> dict[tuple[str, str], str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT operation, transaction_id, status FROM operations")
        return {(op, tx): status for op, tx, status in rows}
    finally:
        conn.close()


def test_orchestrator_sigkilled_with_calls_in_flight_recovers_every_saga_with_money_conserved(
    launch: Launcher, tmp_path: Path
) -> None:
    accounts = launch(credit_failure_rate=0.3, credit_failure_mode="mixed", fault_seed=3)
    with ProxyThread(accounts.url) as proxy:
        gate = proxy.gate
        orchestrator_env = {
            "accounts_url": proxy.url,
            "retry_attempts": 2,
            "retry_initial_backoff": 0.01,
            "retry_max_backoff": 0.05,
            "settle_attempts": 20,
            "transfer_wait": 10,
            "log_level": "INFO",
        }
        orchestrator = launch(role="orchestrator", name="sagas", **orchestrator_env)
        before = httpx.get(f"{accounts.url}/accounts").json()["total"]

        transfers = plan()
        bodies = dict(transfers)
        per_round = TRANSFERS // len(HOLD_FROM)
        pending: list[tuple[str, dict[str, object]]] = []  # requests that died, sent again
        kills = 0
        at_kill: list[tuple[Delivery, dict[str, Any]]] = []  # held call, its saga's last event
        for round_no, hold_from in enumerate(HOLD_FROM):
            # Fresh transfers every round: re-submitted ones may all be settled by recovery
            # already, and then no call would come to be held.
            batch = pending + transfers[round_no * per_round : (round_no + 1) * per_round]
            proxy.run(gate.arm, hold_from)
            died = asyncio.run(submit_round(orchestrator.url, batch, orchestrator, gate.holding))
            assert orchestrator.proc is not None
            if orchestrator.proc.returncode == -9:
                kills += 1
            proxy.run(gate.release)
            # The process is dead, its held calls never answered: what its log says now is what
            # the restart recovers from.
            logged = last_events(tmp_path / "sagas.db")
            held = [d for d in gate.held if d.generation == round_no]
            at_kill += [(d, logged.get(d.transaction_id, {})) for d in held]
            pending = [(t, bodies[t]) for t in died]
            orchestrator = launch(
                role="orchestrator", name="sagas", port=orchestrator.port, **orchestrator_env
            )
        assert kills == len(HOLD_FROM)
        recovered = recovery_lines(tmp_path / "sagas.log", len(HOLD_FROM) + 1)
        assert len(recovered) == len(HOLD_FROM) + 1
        assert sum(map(int, recovered)) > 0, "no kill interrupted a saga: the test proved nothing"
        while pending:  # the last restart: every request that died is sent again, same id
            died = asyncio.run(submit_round(orchestrator.url, pending, orchestrator, None))
            pending = [(t, bodies[t]) for t in died]

        statuses = settled_statuses(orchestrator.url, list(bodies), time.monotonic() + 60)
        deliveries = list(gate.deliveries)

    # Every call carried its saga's id as its key, before and after each restart.
    assert {d.transaction_id for d in deliveries} <= set(bodies), "a call under a key no saga owns"
    # The kills landed mid-call: some saga's log ended with an operation's intent and no outcome
    # while the account service had already answered that operation.
    in_flight = [
        d
        for d, last in at_kill
        if last.get("kind") == "operation_started" and last.get("operation") == d.operation
    ]
    assert in_flight, f"no kill found an intent without its outcome: {at_kill}"
    assert any(200 <= d.status < 300 and not d.replayed for d, _ in at_kill), (
        "no held call had been applied by the account service: the test proved nothing"
    )
    # Recovery asks the call in flight again, with the same key, before anything else for that
    # saga: not "did not happen" (a compensation, a rejection or nothing), not a new key. (A
    # held answer counts when the saga's log at the kill was on that operation: its intent, or
    # an unknown attempt before a retry.)
    for held, last in at_kill:
        if last.get("operation") != held.operation:
            continue
        later = [
            (d.operation, d.status)
            for d in deliveries
            if d.transaction_id == held.transaction_id and d.generation > held.generation
        ]
        assert later, f"{held}: never asked again after the restart"
        assert later[0][0] == held.operation, f"{held}: after the restart: {later}"

    assert set(statuses.values()) <= {"completed", "compensated", "rejected"}, statuses
    audit = httpx.get(f"{accounts.url}/audit").json()
    assert audit["violations"] == []
    assert httpx.get(f"{accounts.url}/accounts").json()["total"] == before

    ops = applied_operations(tmp_path / "accounts.db")
    assert {tx for _, tx in ops} <= set(bodies), "an operation under a key no saga owns"
    for tx_id, status in statuses.items():
        debit = ops.get(("debit", tx_id))
        credit = ops.get(("credit", tx_id))
        compensation = ops.get(("compensate_debit", tx_id))
        if status == "completed":
            assert (debit, credit) == ("applied", "applied"), tx_id
            assert compensation is None, tx_id
        elif status == "compensated":
            assert credit != "applied", tx_id
            assert compensation in ("compensated", "nothing_to_compensate"), tx_id
            assert (debit == "applied") == (compensation == "compensated"), tx_id
        else:
            assert debit in (None, "rejected"), tx_id
            assert credit is None, tx_id
