"""Retry policies for unknown outcomes, built on tenacity.

A policy retries only `Outcome.UNKNOWN` results (timeouts, 5xx, connection errors), always with the
same idempotency key; definite answers (2xx, business 4xx) return at once. Backoff is exponential
with jitter, bounded by a maximum number of attempts and an overall deadline; each attempt has its
own timeout. When the policy gives up, the last (unknown) result is returned, not raised: what to
do next is the saga's decision, not the retry loop's.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    attempt_timeout: float = 5.0
    deadline: float = 30.0

    async def run(self, attempt: Callable[[int], Awaitable[CallResult]]) -> CallResult:
        """Call `attempt(n)` for n = 1, 2, ... until a definite outcome or the policy gives up."""

        def give_up(state: RetryCallState) -> CallResult:
            assert state.outcome is not None
            result: CallResult = state.outcome.result()
            return result

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.deadline),
            wait=wait_exponential_jitter(
                multiplier=self.initial_backoff, max=self.max_backoff, jitter=self.initial_backoff
            ),
            retry=retry_if_result(lambda r: r.outcome is Outcome.UNKNOWN),
            retry_error_callback=give_up,
            reraise=True,
        )
        numbers = itertools.count(1)

        async def one() -> CallResult:
            return await attempt(next(numbers))

        return await retrying(one)
