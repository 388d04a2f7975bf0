"""RetryPolicy: definite answers return at once; unknown ones are retried with attempt numbers
1..n until the attempt limit or the deadline, and the last unknown result is returned.

The backoff schedule and the deadline are checked on a fake clock (`clock`): the waits the policy
asks for are recorded and advance that clock instead of being slept, and the attempts advance it
by what they "take". So the schedule is asserted exactly, with no real time in the assertions.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import pytest
import tenacity

from repository_after.domain.saga import Outcome
from repository_after.service_layer import retry
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult

UNKNOWN = CallResult(Outcome.UNKNOWN, 500, "boom")
OK = CallResult(Outcome.SUCCEEDED, 200, None, {"status": "applied"})


def scripted(*answers: CallResult):  # type: ignore[no-untyped-def]
    seen: list[int] = []

    async def attempt(n: int) -> CallResult:
        seen.append(n)
        return answers[min(len(seen), len(answers)) - 1]

    return attempt, seen


async def test_a_definite_first_answer_is_not_retried() -> None:
    attempt, seen = scripted(OK)
    assert await RetryPolicy(max_attempts=5).run(attempt) is OK
    assert seen == [1]


async def test_unknown_answers_are_retried_until_a_definite_one() -> None:
    attempt, seen = scripted(UNKNOWN, UNKNOWN, OK)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.002)
    assert await policy.run(attempt) is OK
    assert seen == [1, 2, 3]


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_the_attempt_limit_returns_the_last_unknown_result(limit: int) -> None:
    attempt, seen = scripted(UNKNOWN)
    policy = RetryPolicy(max_attempts=limit, initial_backoff=0.001, max_backoff=0.002)
    assert await policy.run(attempt) is UNKNOWN
    assert seen == list(range(1, limit + 1))


async def test_the_deadline_stops_retrying_before_the_attempt_limit(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "uniform", lambda a, _b: a)  # no jitter: waits of exactly 20 ms
    attempt, seen = scripted(UNKNOWN)
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.02, max_backoff=0.02, deadline=0.1)
    assert await policy.run(attempt) is UNKNOWN
    # Instant attempts 20 ms apart against a 100 ms deadline (on the fake clock): far fewer
    # than the 1,000 the limit allows, and no wait begun past the deadline.
    assert 2 <= len(seen) <= 7
    assert all(wait == pytest.approx(0.02) for wait in clock.waits)
    assert clock.now - 1000.0 <= 0.1 + 0.02


async def test_on_retry_sees_each_unknown_result_that_is_retried_and_not_the_last() -> None:
    first, second = CallResult(Outcome.UNKNOWN, 500, "one"), CallResult(Outcome.UNKNOWN, 503, "two")
    attempt, seen = scripted(first, second, UNKNOWN)
    retried: list[tuple[CallResult, int]] = []

    async def on_retry(result: CallResult) -> None:
        retried.append((result, len(seen)))

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002)
    assert await policy.run(attempt, on_retry) is UNKNOWN
    # Each before the next attempt starts; the third (given up) is the caller's to handle.
    assert retried == [(first, 1), (second, 2)]


async def test_on_retry_is_not_called_when_there_is_nothing_to_retry() -> None:
    retried: list[CallResult] = []

    async def on_retry(result: CallResult) -> None:
        retried.append(result)

    for answers, limit in (((OK,), 3), ((UNKNOWN, OK), 3), ((UNKNOWN,), 1)):
        retried.clear()
        attempt, seen = scripted(*answers)
        await RetryPolicy(max_attempts=limit, initial_backoff=0.001).run(attempt, on_retry)
        assert len(retried) == len(seen) - 1


async def test_an_error_in_on_retry_stops_the_retries_and_reaches_the_caller() -> None:
    # The orchestrator logs in `on_retry`; a lost lease there must stop further calls.
    attempt, seen = scripted(UNKNOWN)

    async def on_retry(_: CallResult) -> None:
        if len(seen) == 2:
            raise LookupError("lease lost")

    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.002)
    with pytest.raises(LookupError):
        await policy.run(attempt, on_retry)
    assert seen == [1, 2]


_REAL_SLEEP = asyncio.sleep


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await _REAL_SLEEP(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The policy's and tenacity's clock and sleep, both replaced by one fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(asyncio, "sleep", fake.sleep)
    shim = SimpleNamespace(monotonic=fake.monotonic)
    monkeypatch.setattr(retry, "time", shim)
    monkeypatch.setattr(tenacity, "time", shim)  # its deadline (`stop_after_delay`) clock
    return fake


@pytest.mark.parametrize(
    ("jitter", "waits"),
    [
        ("none", [0.01, 0.02, 0.04, 0.08, 0.1]),
        ("all of it", [0.02, 0.03, 0.05, 0.09, 0.1]),
    ],
)
async def test_the_backoff_doubles_from_the_initial_wait_plus_jitter_up_to_the_maximum(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, jitter: str, waits: list[float]
) -> None:
    # The wait before attempt n (n >= 2) is initial * 2^(n-2) plus a jitter of up to `initial`,
    # at most `max_backoff`: the jitter is pinned to its least and its greatest value.
    monkeypatch.setattr(
        random, "uniform", (lambda a, _b: a) if jitter == "none" else (lambda _a, b: b)
    )
    attempt, seen = scripted(UNKNOWN)
    policy = RetryPolicy(max_attempts=6, initial_backoff=0.01, max_backoff=0.1)
    assert await policy.run(attempt) is UNKNOWN
    assert seen == [1, 2, 3, 4, 5, 6]
    assert clock.waits == pytest.approx(waits)


async def test_the_time_the_first_attempt_took_counts_against_the_deadline(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "uniform", lambda a, _b: a)  # no jitter: exact waits

    async def attempt(n: int) -> CallResult:
        seen.append(n)
        clock.now += 0.06 if n == 1 else 0.03  # e.g. the first one timed out
        return UNKNOWN

    seen: list[int] = []
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.001, max_backoff=0.1, deadline=0.1)
    assert await policy.run(attempt) is UNKNOWN
    # Attempt 2 ends 0.091 s in and attempt 3 at 0.123 s, past the 0.1 s deadline: no fourth.
    assert seen == [1, 2, 3]
    assert clock.waits == pytest.approx([0.001, 0.002])
