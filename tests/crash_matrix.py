"""The crash matrix's driver, shared by the transfer's and the order saga's crash tests.

A scenario is a `Faults` script (which answers are lost) with its SHAPE: the (remote calls,
saga-log writes) a run makes without a crash. The matrix kills a first orchestrator at every
point of that shape (`SimulatedCrash`: before or after each remote call, before each log
write); since the shape is exact, every point really fires, and `crash_then_recover` reports
whether it did. A fresh orchestrator on the same log then recovers, and the client re-submits
with the same saga id (as any client whose request died would); the caller checks the books.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.sagas import DEFINITIONS
from repository_after.service_layer import accounts
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import Participant, SagaLog
from tests.fakes import CrashingLog, SimulatedCrash

POLICY = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)
#: (remote calls, saga-log writes) of a scenario run without a crash
Shape = tuple[int, int]
#: builds the participant of one orchestrator: (crash at call N, crash after it was applied)
Participants = Callable[[int | None, bool], Participant]


async def open_accounts(opening: Mapping[str, int]) -> InMemoryAccountStore:
    """An in-memory account store with these accounts and opening balances."""
    store = InMemoryAccountStore()
    for name, balance in opening.items():
        await store.transaction(
            partial(accounts.open_account, account_id=name, initial_balance=balance)
        )
    return store


def orchestrator(log: SagaLog, participant: Participant) -> Orchestrator:
    return Orchestrator(
        log=log,
        participant=participant,
        definitions=DEFINITIONS,
        forward=POLICY,
        settle=POLICY,
        observers=(),
    )


def call_points(shapes: Mapping[str, Shape]) -> list[tuple[str, int, bool]]:
    """(scenario, call, after) for every remote call of every scenario, before and after it."""
    return [
        (s, c, a)
        for s, (calls, _) in shapes.items()
        for c in range(1, calls + 1)
        for a in (False, True)
    ]


def write_points(shapes: Mapping[str, Shape]) -> list[tuple[str, int]]:
    """(scenario, write) for every saga-log write of every scenario."""
    return [(s, w) for s, (_, writes) in shapes.items() for w in range(1, writes + 1)]


async def crash_then_recover(
    participants: Participants,
    saga_type: str,
    params: dict[str, Any],
    *,
    saga_id: str,
    call: int | None = None,
    after_apply: bool = False,
    write: int | None = None,
) -> tuple[str, bool]:
    """Run the saga until the crash point, recover and re-submit: (its final status, crashed)."""
    log = InMemorySagaLog()
    first = orchestrator(CrashingLog(log, crash_at=write), participants(call, after_apply))
    crashed = False
    try:
        await first.run(saga_type, params, saga_id=saga_id)
    except SimulatedCrash:
        crashed = True
    second = orchestrator(log, participants(None, False))
    await second.recover()
    _, state = await second.run(saga_type, params, saga_id=saga_id)
    return state.status, crashed
