"""A step's `settle` callable decides whether the pivot landed: only `True` or `False` decides.

`LocalParticipant` used to read `bool(value)`: a settle callable that forgot its `return` (None),
or answered a dict or a string, was taken for "voided" (the saga then compensated the steps
before a pivot that may have landed: money refunded for goods shipped) or for "already applied".
Anything else than a bool is an UNKNOWN outcome: retried under the settle policy, then parked
for an operator, never a guess."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from repository_after.library import RetryPolicy, Saga, SagaRunner, StepContext

QUICK = RetryPolicy(max_attempts=2, initial_backoff=0.0001, max_backoff=0.0002)


class Params(BaseModel):
    amount: int


@pytest.mark.parametrize("answer", [None, {}, "no", 0, 1], ids=repr)
async def test_a_settle_answer_that_is_not_a_bool_decides_nothing(answer: Any) -> None:
    calls: list[tuple[str, str]] = []

    async def reserve(ctx: StepContext[Params]) -> dict[str, int]:
        calls.append(("reserve", "act"))
        return {"amount": ctx.params.amount}

    def release(ctx: StepContext[Params]) -> None:
        calls.append(("reserve", "compensate"))

    async def ship(ctx: StepContext[Params]) -> None:
        calls.append(("ship", "act"))
        raise ConnectionError("the answer was lost")

    async def shipped(ctx: StepContext[Params]) -> Any:
        calls.append(("ship", "settle"))
        return answer

    saga: Saga[Params] = Saga("order", params=Params)
    saga.add("reserve", reserve, compensate=release)
    saga.add("ship", ship, settle=shipped)
    async with SagaRunner([saga], log="memory://", forward=QUICK, settle=QUICK) as runner:
        view = await runner.run("order", Params(amount=3), saga_id="o-1")

    assert view.status == "failed_needs_attention", view.status  # parked, not guessed
    assert ("reserve", "compensate") not in calls
    assert view.steps[1].settlement not in ("voided", "already_applied")
