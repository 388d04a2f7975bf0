"""A client's re-submission and the start-up claim, racing: the saga is still driven.

Found by `sagabank chaos --saga classes` (seed 1, 1,000 groups, a loaded machine): after an
orchestrator SIGKILL, the client re-sent a saga it had started (`Orchestrator.start` of an
existing id starts a driver), and the new process's start-up claim (`include_own`) took the
saga's lease while that driver was reading the log. The claim found the driver running and
joined it; the driver, which had seen no lease before its read, then failed to acquire the one
its own process had just claimed, took it for another worker's and ended. The saga stayed
leased to this process, its lease renewed at every claim round, and undriven: `enrolling` for
the three minutes left of the run. In process, with the claim landing exactly in that window.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import SagaStatus
from repository_after.domain.sagas import DEFINITIONS
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.saga_ports import StoredSaga
from tests.crash_matrix import POLICY, open_accounts
from tests.fakes import LocalParticipant, SimulatedCrash

PARAMS = {"source": "a", "target": "b", "amount": 10}


class GatedLog(InMemorySagaLog):
    """Its first `load` waits for `gate` (the window between a driver's lease check and its
    acquire)."""

    def __init__(self) -> None:
        super().__init__()
        self.loading = asyncio.Event()
        self.gate = asyncio.Event()
        self.gated = False

    async def load(self, saga_id: str) -> StoredSaga | None:
        if not self.gated:
            self.gated = True
            self.loading.set()
            await self.gate.wait()
        return await super().load(saga_id)


def orchestrator(log: InMemorySagaLog, participant: Any) -> Orchestrator:
    return Orchestrator(
        log=log,
        participant=participant,
        definitions=DEFINITIONS,
        forward=POLICY,
        settle=POLICY,
        observers=(),
        worker_id="host:8000",  # the stable id a restarted process reuses
    )


async def test_a_claim_inside_a_resubmitted_sagas_read_still_gets_it_driven() -> None:
    money = await open_accounts({"a": 100, "b": 0})
    log = GatedLog()
    log.gated = True  # not the first process's loads
    dying = orchestrator(log, LocalParticipant(money, crash_at_call=1))
    with pytest.raises(SimulatedCrash):
        await dying.run("transfer", PARAMS, saga_id="t-1")
    # The first process died with the saga leased under its id; a new one starts.
    log.gated = False
    restarted = orchestrator(log, LocalParticipant(money))
    resubmitted = asyncio.ensure_future(restarted.start("transfer", PARAMS, saga_id="t-1"))
    await log.loading.wait()  # its driver is reading the log, with no lease seen yet
    assert await restarted.claim(include_own=True) == ["t-1"]  # start-up recovery
    log.gate.set()
    assert await resubmitted == ("t-1", False)
    async with asyncio.timeout(5):
        state = await restarted.drive("t-1")
    assert state.status == SagaStatus.COMPLETED
    balances = await money.read(lambda r: {a.account_id: a.balance for a in r.list_accounts()})
    assert balances == {"a": 90, "b": 10}
