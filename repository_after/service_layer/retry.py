"""Retry policies for unknown outcomes, built on tenacity.

A policy retries only `Outcome.UNKNOWN` results (timeouts, 5xx, connection errors), always with the
same idempotency key; definite answers (2xx, business 4xx) return at once. Backoff is exponential
with jitter, bounded by a maximum number of attempts and an overall deadline; each attempt has its
own timeout. When the policy gives up, the last (unknown) result is returned, not raised: what to
do next is the saga's decision, not the retry loop's. `on_retry` sees each unknown result that
will be retried, before the wait (the orchestrator logs it there, so the log shows an operation
waiting on its next attempt; the last unknown result is the caller's to log with what follows).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
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

    async def run(
        self,
        attempt: Callable[[int], Awaitable[CallResult]],
        on_retry: Callable[[CallResult], Awaitable[None]] | None = None,
    ) -> CallResult:
        """Call `attempt(n)` for n = 1, 2, ... until a definite outcome or the policy gives up;
        `on_retry(result)` runs for each unknown result that another attempt will follow.

        The first attempt runs bare: nearly every call is answered at once, and building a
        tenacity loop per call cost measurable CPU (docs/performance.md). Only an unknown first
        answer starts the loop, after the first backoff, with the same schedule and deadline."""
        started = time.monotonic()
        first = await attempt(1)
        if first.outcome is not Outcome.UNKNOWN or self.max_attempts <= 1:
            return first
        if on_retry is not None:
            await on_retry(first)
        first_wait = self.initial_backoff + random.uniform(0, self.initial_backoff)
        await asyncio.sleep(min(self.max_backoff, first_wait))

        # When a stop condition ends the retries, tenacity returns what `give_up` returns (the
        # last answer: still unknown) and never raises RetryError, so `reraise` is never read;
        # an exception from an attempt is not retried (`retry_if_result`) and propagates as is.
        def give_up(state: RetryCallState) -> CallResult:
            assert state.outcome is not None
            result: CallResult = state.outcome.result()
            return result

        left = max(0.0, self.deadline - (time.monotonic() - started))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts - 1) | stop_after_delay(left),
            wait=wait_exponential_jitter(  # attempt n >= 2 waits initial * 2^(n-1) + jitter
                multiplier=2 * self.initial_backoff,
                max=self.max_backoff,
                jitter=self.initial_backoff,
            ),
            retry=retry_if_result(lambda r: r.outcome is Outcome.UNKNOWN),
            retry_error_callback=give_up,
            before_sleep=None if on_retry is None else _before_sleep(on_retry),
        )
        numbers = itertools.count(2)

        async def one() -> CallResult:
            return await attempt(next(numbers))

        return await retrying(one)


def _before_sleep(
    on_retry: Callable[[CallResult], Awaitable[None]],
) -> Callable[[RetryCallState], Awaitable[None]]:
    async def hook(state: RetryCallState) -> None:
        assert state.outcome is not None
        await on_retry(state.outcome.result())

    return hook
