"""`service_layer.sagas`: the answer `POST /sagas/{type}` and `POST /transfers` give, in process.

A saga driven to its end within the wait is shown from the driver's memory: that view must be the
one the log gives (`GET` reads it from the log). A saga still running is shown from the log; a
repeated id waits for the first request's saga and says it was not created. A saga is found only
under its own type.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.schemas import TransferIn
from repository_after.service_layer import accounts
from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult
from repository_after.service_layer.saga_types import SagaTypes
from repository_after.service_layer.saga_views import load_saga_view
from repository_after.service_layer.sagas import SagaRun, run_saga, saga_of_type, start_and_wait
from tests.fakes import LocalParticipant

PARAMS = {"source": "alice", "target": "bob", "amount": 300}
POLICY = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)


class CountingLog(InMemorySagaLog):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, saga_id: str) -> Any:
        self.loads += 1
        return await super().load(saga_id)


@dataclass
class Gate:
    """Every call waits for `open` (then goes to the accounts in memory)."""

    inner: LocalParticipant
    open: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, **kwargs: Any) -> CallResult:
        await self.open.wait()
        return await self.inner.call(**kwargs)


async def orchestrator(gate: bool = False) -> tuple[Orchestrator, Gate]:
    store = InMemoryAccountStore()
    for name in ("alice", "bob"):
        await store.transaction(
            lambda tx, n=name: accounts.open_account(tx, account_id=n, initial_balance=1000)
        )
    participant = Gate(LocalParticipant(store))
    if not gate:
        participant.open.set()
    return (
        Orchestrator(
            log=CountingLog(),
            participant=participant,
            definitions=DEFINITIONS,
            forward=POLICY,
            settle=POLICY,
            observers=(),
            worker_id="w",
            lease_ttl=60.0,
        ),
        participant,
    )


async def run(o: Orchestrator, saga_id: str, wait: float) -> SagaRun:
    return await start_and_wait(
        orchestrator=o, saga_type=TRANSFER.name, params=PARAMS, transaction_id=saga_id, wait=wait
    )


async def test_a_saga_finished_within_the_wait_is_shown_unread_as_the_log_shows_it() -> None:
    o, _ = await orchestrator()
    done = await run(o, "t-1", wait=5.0)
    assert (done.saga_id, done.created, done.view["status"]) == ("t-1", True, "completed")
    assert o.log.loads == 0  # type: ignore[attr-defined]  # shown from the driver's memory...
    assert done.view == await load_saga_view(orchestrator=o, saga_id="t-1")  # ...as the log has it
    await o.close()


async def test_a_saga_still_running_is_shown_from_the_log_and_a_repeat_waits_for_it() -> None:
    o, gate = await orchestrator(gate=True)
    running = await run(o, "t-1", wait=0.0)
    assert (running.saga_id, running.created, running.view["status"]) == ("t-1", True, "debiting")
    assert running.view == await load_saga_view(orchestrator=o, saga_id="t-1")
    gate.open.set()
    again = await run(o, "t-1", wait=5.0)  # the same request: waits for the first one's saga
    assert (again.saga_id, again.created, again.view["status"]) == ("t-1", False, "completed")
    assert again.view == await load_saga_view(orchestrator=o, saga_id="t-1")
    await o.close()


async def test_a_saga_is_found_only_under_its_own_type() -> None:
    o, _ = await orchestrator()
    await run(o, "t-1", wait=5.0)
    view = await saga_of_type(orchestrator=o, saga_type="transfer", saga_id="t-1")
    assert view["transaction_id"] == "t-1"
    with pytest.raises(SagaNotFound) as missing:
        await saga_of_type(orchestrator=o, saga_type="order", saga_id="t-1")
    assert missing.value.args == ("t-1",)
    await o.close()


async def test_no_answer_waits_longer_than_its_wait() -> None:
    """A saga blocked on a participant: the first request, its repeat, and a request through
    `run_saga` each answer after their wait (0 here), with the saga still running."""
    o, gate = await orchestrator(gate=True)
    types = SagaTypes()
    types.register(TRANSFER, TransferIn)
    first = await asyncio.wait_for(run(o, "t-1", wait=0.0), timeout=5)
    repeat = await asyncio.wait_for(run(o, "t-1", wait=0.0), timeout=5)
    other = await asyncio.wait_for(
        run_saga(
            orchestrator=o,
            types=types,
            saga_type="transfer",
            raw=PARAMS,
            transaction_id="t-2",
            wait=0.0,
        ),
        timeout=5,
    )
    assert [(r.saga_id, r.created, r.view["status"]) for r in (first, repeat, other)] == [
        ("t-1", True, "debiting"),
        ("t-1", False, "debiting"),
        ("t-2", True, "debiting"),
    ]
    gate.open.set()
    await o.close()
