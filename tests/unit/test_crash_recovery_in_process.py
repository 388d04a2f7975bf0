"""Deterministic crash tests: the orchestrator "dies" at every call and every log write.

For each fault scenario, a first orchestrator is stopped dead (SimulatedCrash) before or after
each remote call (after: the account service committed but the answer was lost), or before each
saga-log write. A fresh orchestrator on the same log then recovers, the client re-submits its
transfer with the same id (as any client whose request died would), and the books must balance:
the saga is terminal, money is conserved, nothing applied twice, and the outcome is consistent
with the balances.
"""

from __future__ import annotations

from typing import Any

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.audit import audit
from repository_after.service_layer.saga_ports import CallResult
from tests.crash_matrix import (
    Shape,
    call_points,
    crash_then_recover,
    open_accounts,
    orchestrator,
    write_points,
)
from tests.fakes import CrashingLog, Faults, LocalParticipant

SCENARIOS: dict[str, Faults] = {
    "no faults": lambda _op, _n: None,
    "credit lost before, always": lambda op, _n: "before" if op == "credit" else None,
    "credit lost after, always": lambda op, _n: "after" if op == "credit" else None,
    "credit lost after, once": lambda op, n: "after" if op == "credit" and n == 1 else None,
    "debit lost after, always": lambda op, _n: "after" if op == "debit" else None,
}
#: (remote calls, saga-log writes) of each scenario without a crash: every crash point below
#: really fires (asserted), and the no-crash test checks these counts stay true. The first write
#: holds the start and the first intent; the happy path is three writes for two calls. An unknown
#: attempt is written alone only when a retry follows; the last one goes with the next intent.
SHAPES: dict[str, Shape] = {
    "no faults": (2, 3),
    "credit lost before, always": (5, 6),
    "credit lost after, always": (4, 5),
    "credit lost after, once": (3, 4),
    "debit lost after, always": (3, 4),
}
PARAMS = {"source": "alice", "target": "bob", "amount": 300}


async def open_books() -> InMemoryAccountStore:
    return await open_accounts({"alice": 1000, "bob": 0})


async def recovered(
    scenario: str, *, call: int | None = None, after_apply: bool = False, write: int | None = None
) -> tuple[InMemoryAccountStore, str, bool]:
    store = await open_books()
    status, crashed = await crash_then_recover(
        lambda at, after: LocalParticipant(
            store, SCENARIOS[scenario], crash_at_call=at, crash_after_apply=after
        ),
        TRANSFER.name,
        PARAMS,
        saga_id="t-1",
        call=call,
        after_apply=after_apply,
        write=write,
    )
    return store, status, crashed


async def assert_books_balance(store: InMemoryAccountStore, status: str) -> None:
    report = await store.read(audit)
    assert report.ok, report.violations
    balances = {a.account_id: a.balance for a in await store.read(lambda r: r.list_accounts())}
    if status == SagaStatus.COMPLETED:
        assert balances == {"alice": 700, "bob": 300}
    else:
        assert status == SagaStatus.COMPENSATED
        assert balances == {"alice": 1000, "bob": 0}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_without_a_crash_every_scenario_settles(scenario: str) -> None:
    store = await open_books()
    log = CrashingLog(InMemorySagaLog())
    participant = LocalParticipant(store, SCENARIOS[scenario])
    _, state = await orchestrator(log, participant).run(TRANSFER.name, PARAMS, saga_id="t-1")
    assert (len(participant.calls), log.writes) == SHAPES[scenario]
    await assert_books_balance(store, state.status)


@pytest.mark.parametrize(("scenario", "call", "after_apply"), call_points(SHAPES))
async def test_crash_at_any_remote_call_recovers_with_money_conserved(
    scenario: str, call: int, after_apply: bool
) -> None:
    store, status, crashed = await recovered(scenario, call=call, after_apply=after_apply)
    assert crashed
    await assert_books_balance(store, status)


@pytest.mark.parametrize(("scenario", "write"), write_points(SHAPES))
async def test_crash_before_any_log_write_recovers_with_money_conserved(
    scenario: str, write: int
) -> None:
    store, status, crashed = await recovered(scenario, write=write)
    assert crashed
    await assert_books_balance(store, status)


class LogWatchingParticipant(LocalParticipant):
    """Before each call, notes what the saga log holds and how many writes it has had."""

    def __init__(self, store: InMemoryAccountStore, faults: Faults, log: CrashingLog) -> None:
        super().__init__(store, faults)
        self.log = log
        self.seen: list[tuple[str, int, list[tuple[str, str | None, int | None]]]] = []

    async def call(self, **kwargs: Any) -> CallResult:
        stored = await self.log.load(kwargs["transaction_id"])
        assert stored is not None
        events = [(e.kind.value, e.operation, e.attempt) for e in stored.events]
        self.seen.append((kwargs["operation"], self.log.writes, events))
        return await super().call(**kwargs)


async def test_an_unknown_attempt_is_logged_before_its_retry_and_the_last_with_what_follows() -> (
    None
):
    store = await open_books()
    log = CrashingLog(InMemorySagaLog())
    participant = LogWatchingParticipant(store, SCENARIOS["credit lost before, always"], log)
    await orchestrator(log, participant).run(TRANSFER.name, PARAMS, saga_id="t-1")
    (op1, writes1, _), (op2, writes2, before_retry), (op3, writes3, before_settling) = (
        participant.seen[1:4]
    )
    assert (op1, op2, op3) == ("credit", "credit", "void_credit")
    # While the retry waits, the log already shows the first unknown attempt ...
    assert before_retry[-1] == ("attempt", "credit", 1)
    assert writes2 == writes1 + 1
    # ... and the second (last) one reaches it with the give-up and the settlement's intent, in
    # one write: the intent is still written before the call it announces.
    assert before_settling[-3:] == [
        ("attempt", "credit", 2),
        ("retries_exhausted", "credit", None),
        ("operation_started", "void_credit", None),
    ]
    assert writes3 == writes2 + 1
