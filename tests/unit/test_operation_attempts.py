"""One remote operation's attempts (`operation_attempts.perform`): what each attempt records, and
that no attempt is made under a lease the driver's view no longer matches.

A refused compensation parks the saga with the participant's own error word in its reason: that
word is the operator's only clue (frozen account? closed?), so the attempt event must carry it
from the answer to the log, and from the log to the parked reason.

Between two attempts (the backoff wait) the saga may be taken over by another worker and then
claimed back by this one: the lease held is then two fences ahead of the lease the driver's view
was built under, and another worker may have written meanwhile. The next attempt must not be
made (`LeaseLost`): the driver reads the log again instead of calling on a stale view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.domain.saga import EventKind, Outcome, SagaEvent, SagaStatus, StepRole
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.operation_attempts import perform
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult, LeaseLost
from tests.fakes import LocalParticipant
from tests.unit.test_leases_in_process import PARAMS, books, worker


@dataclass
class Refusing:
    """Answers the operations in `refusals` with a definite refusal, delegates the others."""

    inner: LocalParticipant
    refusals: dict[str, tuple[int, str]]

    async def call(self, **kwargs: Any) -> CallResult:
        if (refusal := self.refusals.get(kwargs["operation"])) is not None:
            return CallResult(Outcome.REJECTED, *refusal)
        return await self.inner.call(**kwargs)


async def test_a_refused_compensation_parks_the_saga_with_the_participants_error() -> None:
    store, log = await books(), InMemorySagaLog()
    participant = Refusing(
        LocalParticipant(store),
        {"credit": (404, "account_not_found"), "compensate_debit": (409, "account_frozen")},
    )
    orchestrator = worker(log, participant, "a", ttl=60.0)
    _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id="t-1")
    assert state.status is SagaStatus.FAILED_NEEDS_ATTENTION
    assert state.parked_reason == "compensation compensate_debit refused: account_frozen"
    stored = await log.load("t-1")
    assert stored is not None
    attempts = [
        (e.operation, e.outcome, e.status_code, e.error)
        for e in stored.events
        if e.kind is EventKind.ATTEMPT
    ]
    assert attempts == [
        ("debit", Outcome.SUCCEEDED, 200, None),
        ("credit", Outcome.REJECTED, 404, "account_not_found"),
        ("compensate_debit", Outcome.REJECTED, 409, "account_frozen"),
    ]
    # The log replays to the same reason (a restarted worker shows what this one showed).
    assert orchestrator.state_of(stored).parked_reason == state.parked_reason
    await orchestrator.close()


@dataclass
class UnknownThenApplied:
    """The first call's outcome is unknown (a 503), every later one succeeds."""

    calls: list[str] = field(default_factory=list)

    async def call(self, **kwargs: Any) -> CallResult:
        self.calls.append(kwargs["operation"])
        if len(self.calls) == 1:
            return CallResult(Outcome.UNKNOWN, 503, "service_unavailable")
        return CallResult(Outcome.SUCCEEDED, 200, None, {"status": "applied"})


async def test_no_retry_is_made_when_another_worker_held_the_saga_during_the_wait() -> None:
    log = InMemorySagaLog()
    leases = LeaseBook(log, owner="a", ttl=60.0)
    lease = await leases.take(
        lambda: log.create(
            saga_id="t-1",
            definition=TRANSFER.name,
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params=PARAMS,
            events=[],
            owner="a",
            ttl=60.0,
        )
    )
    assert lease is not None
    participant = UnknownThenApplied()
    logged: list[list[SagaEvent]] = []

    async def taken_over_and_claimed_back(events: list[SagaEvent]) -> None:
        # During the wait before the retry: another worker takes the saga over (and could write),
        # then this worker's claim takes it back, two fences after the driver's lease.
        logged.append(events)
        assert [x.fence for x in await log.claim("b", limit=1, ttl=60.0, take_over=True)] == [
            lease.fence + 1
        ]
        assert [x.fence for x in await leases.claim(limit=1, include_own=True, take_over=True)] == [
            lease.fence + 2
        ]

    with pytest.raises(LeaseLost, match="held by another worker"):
        await perform(
            participant=participant,
            leases=leases,
            lease=lease,
            policy=RetryPolicy(max_attempts=3, initial_backoff=0.0001, max_backoff=0.0002),
            saga_id="t-1",
            definition=TRANSFER,
            params=PARAMS,
            history=(),
            call=TRANSFER.call(0, StepRole.ACTION),
            log_before_retry=taken_over_and_claimed_back,
        )
    assert participant.calls == ["debit"]  # the first attempt only: none on the stale view
    assert [[(e.kind, e.outcome, e.error) for e in x] for x in logged] == [
        [(EventKind.ATTEMPT, Outcome.UNKNOWN, "service_unavailable")]
    ]


async def test_forward_actions_use_the_forward_policy_and_settlements_the_settle_policy() -> None:
    # One attempt for a forward action, three for a settlement: an unknown credit is asked once,
    # then settled by asking `void_credit` until it answers (here the second time).
    store, log = await books(), InMemorySagaLog()
    participant = LocalParticipant(
        store,
        faults=lambda op, n: "before" if op == "credit" or (op, n) == ("void_credit", 1) else None,
    )
    orchestrator = Orchestrator(
        log=log,
        participant=participant,
        definitions=DEFINITIONS,
        forward=RetryPolicy(max_attempts=1, initial_backoff=0.0001, max_backoff=0.0002),
        settle=RetryPolicy(max_attempts=3, initial_backoff=0.0001, max_backoff=0.0002),
        observers=(),
        worker_id="a",
        lease_ttl=60.0,
    )
    _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id="t-1")
    assert state.status is SagaStatus.COMPENSATED
    assert [c.operation for c in participant.calls] == [
        "debit",
        "credit",
        "void_credit",
        "void_credit",
        "compensate_debit",
    ]
    await orchestrator.close()


ISO_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


async def test_every_logged_event_carries_its_time_and_every_attempt_when_it_started() -> None:
    # Operators read a saga's history by its times: when each operation was started, when each
    # attempt was sent (`started_at`) and answered (`at`), when retries ran out. Every kind of
    # event an operation logs is here: intents, attempts answered and unknown, the give-up.
    store, log = await books(), InMemorySagaLog()
    participant = LocalParticipant(
        store,
        faults=lambda op, n: "before" if op == "credit" or (op, n) == ("void_credit", 1) else None,
    )
    orchestrator = Orchestrator(
        log=log,
        participant=participant,
        definitions=DEFINITIONS,
        forward=RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002),
        settle=RetryPolicy(max_attempts=3, initial_backoff=0.0001, max_backoff=0.0002),
        observers=(),
        worker_id="a",
        lease_ttl=60.0,
    )
    before = utc_now()
    _, state = await orchestrator.run(TRANSFER.name, PARAMS, saga_id="t-1")
    after = utc_now()
    assert state.status is SagaStatus.COMPENSATED
    stored = await log.load("t-1")
    assert stored is not None
    kinds = {e.kind for e in stored.events}
    assert kinds >= {EventKind.OPERATION_STARTED, EventKind.ATTEMPT, EventKind.RETRIES_EXHAUSTED}
    previous = before
    for e in stored.events:
        assert isinstance(e.at, str), e
        assert ISO_MICROS.fullmatch(e.at), e
        if e.kind is EventKind.ATTEMPT:
            # Sent after what precedes it in the log, answered after it was sent.
            assert isinstance(e.started_at, str), e
            assert ISO_MICROS.fullmatch(e.started_at), e
            assert previous <= e.started_at <= e.at, e
        else:
            assert e.started_at is None, e
        assert previous <= e.at <= after, e  # same format and zone: the text orders as the time
        previous = e.at
    await orchestrator.close()
