"""The saga library's contract, in process on the in-memory log: what a callable receives, how
its answer or exception is classified, and what the engine then does (compensate in reverse,
retry under the same key, settle, park), and what `inspect` and `list` show."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from repository_after.domain.saga import InvalidDefinition
from repository_after.library import (
    Refused,
    RetryPolicy,
    Saga,
    SagaNotFound,
    SagaRunner,
    StepContext,
    StepKind,
)

QUICK = RetryPolicy(max_attempts=3, initial_backoff=0.0001, max_backoff=0.0002)


class Params(BaseModel):
    amount: int
    fail: str = ""  # the step that refuses
    flaky: str = ""  # the step that raises once, then succeeds
    broken: str = ""  # the step that always raises


class Recorder:
    """Step callables that record every call (step, role, key) and behave as `Params` says."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.seen: dict[str, StepContext[Params]] = {}
        self.landed: bool = True
        self.down: set[str] = set()  # steps that raise until an operator fixes them

    def action(self, name: str) -> Any:
        async def act(ctx: StepContext[Params]) -> dict[str, Any]:
            self.calls.append((name, "act", ctx.key))
            self.seen[name] = ctx
            p = ctx.params
            if p.fail == name:
                raise Refused(f"{name} refused")
            flaky = p.flaky == name and self.count(name, "act") == 1
            if p.broken == name or name in self.down or flaky:
                raise ConnectionError("lost")
            return {"step": name, "amount": p.amount}

        act.__name__ = name
        return act

    def undo(self, name: str) -> Any:
        def compensate(ctx: StepContext[Params]) -> None:  # a synchronous callable
            self.calls.append((name, "compensate", ctx.key))

        return compensate

    async def settle(self, ctx: StepContext[Params]) -> bool:
        self.calls.append((ctx.step, "settle", ctx.key))
        return self.landed

    def count(self, name: str, role: str) -> int:
        return sum(1 for n, r, _ in self.calls if (n, r) == (name, role))

    def roles(self) -> list[tuple[str, str]]:
        return [(n, r) for n, r, _ in self.calls]


def three_steps(rec: Recorder, *, settle: bool = False) -> Saga[Params]:
    saga: Saga[Params] = Saga("pay", params=Params)
    saga.add("reserve", rec.action("reserve"), compensate=rec.undo("reserve"))
    saga.add("charge", rec.action("charge"), compensate=rec.undo("charge"))
    saga.add("ship", rec.action("ship"), settle=rec.settle if settle else None)
    return saga


def runner(*sagas: Saga[Any]) -> SagaRunner:
    return SagaRunner(sagas, log="memory://", forward=QUICK, settle=QUICK, observers=())


async def test_each_callable_gets_typed_params_earlier_results_and_its_step_key() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        view = await r.run("pay", {"amount": 5}, saga_id="s1")

    assert view.status == "completed"
    assert rec.roles() == [("reserve", "act"), ("charge", "act"), ("ship", "act")]
    ship = rec.seen["ship"]
    assert isinstance(ship.params, Params)
    assert ship.params.amount == 5
    assert ship.saga_id == "s1"
    assert ship.key == "s1:ship"
    assert dict(ship.results) == {
        "reserve": {"step": "reserve", "amount": 5},
        "charge": {"step": "charge", "amount": 5},
    }
    assert dict(rec.seen["reserve"].results) == {}
    assert view.results == {
        "reserve": {"step": "reserve", "amount": 5},
        "charge": ship.results["charge"],
    }


async def test_a_refusal_compensates_the_applied_steps_last_first_under_their_keys() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        view = await r.run("pay", Params(amount=1, fail="ship"), saga_id="s2")

    assert view.status == "compensated"
    assert rec.calls[3:] == [
        ("charge", "compensate", "s2:charge"),
        ("reserve", "compensate", "s2:reserve"),
    ]
    assert [(s.name, s.action, s.compensation) for s in view.steps] == [
        ("reserve", "succeeded", "succeeded"),
        ("charge", "succeeded", "succeeded"),
        ("ship", "rejected", None),
    ]


async def test_a_refusal_of_the_first_step_ends_the_saga_rejected_with_nothing_to_undo() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        view = await r.run("pay", Params(amount=1, fail="reserve"))

    assert view.status == "rejected"
    assert rec.roles() == [("reserve", "act")]


async def test_an_exception_is_an_unknown_outcome_retried_with_the_same_key() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        view = await r.run("pay", Params(amount=1, flaky="charge"), saga_id="s3")

    assert view.status == "completed"
    charges = [key for n, role, key in rec.calls if (n, role) == ("charge", "act")]
    assert charges == ["s3:charge", "s3:charge"]
    assert view.steps[1].attempts == 2


async def test_an_unknown_compensatable_step_is_compensated_with_the_rest_after_every_retry() -> (
    None
):
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        view = await r.run("pay", Params(amount=1, broken="charge"))

    assert view.status == "compensated"
    assert rec.count("charge", "act") == QUICK.max_attempts
    assert rec.roles()[-2:] == [("charge", "compensate"), ("reserve", "compensate")]


@pytest.mark.parametrize(("landed", "status"), [(True, "completed"), (False, "compensated")])
async def test_an_unknown_pivot_is_settled_by_its_callable(landed: bool, status: str) -> None:
    rec = Recorder()
    rec.landed = landed
    async with runner(three_steps(rec, settle=True)) as r:
        view = await r.run("pay", Params(amount=1, broken="ship"))

    assert view.status == status
    assert rec.count("ship", "settle") == 1
    assert view.steps[2].settlement == ("already_applied" if landed else "voided")
    assert rec.count("reserve", "compensate") == (0 if landed else 1)


async def test_an_unknown_pivot_without_a_settlement_parks_and_an_operator_retry_resumes() -> None:
    rec = Recorder()
    rec.down.add("ship")
    async with runner(three_steps(rec)) as r:
        parked = await r.run("pay", Params(amount=1), saga_id="s4")
        assert parked.status == "failed_needs_attention"
        assert "ship" in (parked.parked_reason or "")
        assert rec.count("reserve", "compensate") == 0  # never undone past the point of no return

        rec.down.clear()  # the cause fixed: the operator resumes it where it stopped
        resumed = await r.retry("s4", note="shipping is back")

    assert resumed.status == "completed"
    assert [key for n, role, key in rec.calls if n == "ship"] == ["s4:ship"] * 4
    assert rec.count("reserve", "act") == 1


async def test_a_refused_compensation_parks_the_saga() -> None:
    rec = Recorder()
    saga: Saga[Params] = Saga("undo-fails", params=Params)

    def cannot_undo(ctx: StepContext[Params]) -> None:
        raise Refused("too late to undo")

    saga.add("reserve", rec.action("reserve"), compensate=cannot_undo)
    saga.add("ship", rec.action("ship"))
    async with runner(saga) as r:
        view = await r.run(saga, Params(amount=1, fail="ship"))

    assert view.status == "failed_needs_attention"
    assert "too late to undo" in (view.parked_reason or "")


async def test_a_retriable_step_refused_parks_instead_of_compensating() -> None:
    rec = Recorder()
    saga: Saga[Params] = Saga("after-pivot", params=Params)
    saga.add("reserve", rec.action("reserve"), compensate=rec.undo("reserve"))
    saga.add("ship", rec.action("ship"))
    saga.add("notify", rec.action("notify"))
    assert [s.kind for s in saga.definition().steps] == [
        StepKind.COMPENSATABLE,
        StepKind.PIVOT,
        StepKind.RETRIABLE,
    ]
    async with runner(saga) as r:
        view = await r.run(saga, Params(amount=1, fail="notify"))

    assert view.status == "failed_needs_attention"
    assert rec.count("reserve", "compensate") == 0


async def test_a_result_that_is_not_json_is_an_unknown_outcome() -> None:
    saga: Saga[Params] = Saga("odd", params=Params)
    undone: list[str] = []
    saga.add("make", lambda ctx: object(), compensate=lambda ctx: undone.append(ctx.key))
    saga.add("use", lambda ctx: 1)
    async with runner(saga) as r:
        view = await r.run(saga, Params(amount=1), saga_id="odd-1")

    assert view.status == "compensated"  # possibly applied: undone
    assert undone == ["odd-1:make"]
    assert view.steps[0].attempts == QUICK.max_attempts


async def test_bad_params_are_refused_before_anything_is_logged() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        with pytest.raises(ValidationError):
            await r.run("pay", {"amount": "lots"}, saga_id="bad")
        with pytest.raises(SagaNotFound):
            await r.inspect("bad")
    assert rec.calls == []


async def test_inspect_and_list_show_what_the_log_holds() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        ran = await r.run("pay", Params(amount=7), saga_id="s5")
        await r.run("pay", Params(amount=1, fail="reserve"), saga_id="s6")
        seen = await r.inspect("s5")
        listed = await r.list()
        rejected = await r.list(status="rejected")

    assert seen.status == ran.status == "completed"
    assert seen.results == ran.results
    assert seen.params == {"amount": 7, "fail": "", "flaky": "", "broken": ""}
    assert len(seen.history) == len(ran.history)
    assert Counter(s.saga_id for s in listed) == Counter({"s5": 1, "s6": 1})
    assert [s.saga_id for s in rejected] == ["s6"]


async def test_running_an_id_again_with_the_same_params_joins_it_and_calls_nothing() -> None:
    rec = Recorder()
    async with runner(three_steps(rec)) as r:
        await r.run("pay", Params(amount=2), saga_id="s7")
        again = await r.run("pay", Params(amount=2), saga_id="s7")

    assert again.status == "completed"
    assert rec.count("reserve", "act") == 1


def test_a_compensation_after_the_point_of_no_return_is_refused_by_the_engine_rules() -> None:
    rec = Recorder()
    saga: Saga[Params] = Saga("bad-shape", params=Params)
    saga.add("ship", rec.action("ship"))
    saga.add("reserve", rec.action("reserve"), compensate=rec.undo("reserve"))
    with pytest.raises(InvalidDefinition, match="compensatable steps come first"):
        saga.definition()


def test_a_step_name_the_engine_uses_as_a_status_is_refused() -> None:
    saga: Saga[Params] = Saga("names", params=Params)
    with pytest.raises(InvalidDefinition, match="cannot name a step"):
        saga.add("completed", lambda ctx: None)
