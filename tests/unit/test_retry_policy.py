"""RetryPolicy: definite answers return at once; unknown ones are retried with attempt numbers
1..n until the attempt limit or the deadline, and the last unknown result is returned."""

from __future__ import annotations

import time

import pytest

from repository_after.domain.saga import Outcome
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


async def test_the_attempt_limit_returns_the_last_unknown_result() -> None:
    attempt, seen = scripted(UNKNOWN)
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.002)
    assert await policy.run(attempt) is UNKNOWN
    assert seen == [1, 2, 3, 4]


async def test_the_deadline_stops_retrying_before_the_attempt_limit() -> None:
    attempt, seen = scripted(UNKNOWN)
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.02, max_backoff=0.02, deadline=0.1)
    started = time.monotonic()
    assert await policy.run(attempt) is UNKNOWN
    assert 2 <= len(seen) < 20  # backoff 20-40 ms against a 100 ms deadline
    assert time.monotonic() - started < 1.0


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
