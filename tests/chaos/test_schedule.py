"""The fault schedule is a pure function of the seed: same seed, same faults and kill points."""

from __future__ import annotations

import pytest

from sagabank_tools.chaos.load import plan
from sagabank_tools.chaos.schedule import (
    ALL_FAMILIES,
    Family,
    Rates,
    Schedule,
    parse_families,
)

OPERATIONS = ("debit", "credit", "compensate_debit", "void_credit")


def fingerprint(schedule: Schedule) -> list[object]:
    faults = [
        schedule.proxy_fault(f"chaos-{i:06d}", op, n)
        for i in range(300)
        for op in OPERATIONS
        for n in (1, 2, 3)
    ]
    kills = [schedule.kill_points(f, 2000) for f in ALL_FAMILIES]
    return [*faults, *kills]


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert fingerprint(Schedule(7, ALL_FAMILIES)) == fingerprint(Schedule(7, ALL_FAMILIES))


def test_different_seeds_give_different_schedules() -> None:
    assert fingerprint(Schedule(7, ALL_FAMILIES)) != fingerprint(Schedule(8, ALL_FAMILIES))


def test_a_fault_depends_on_the_delivery_not_on_the_order_of_questions() -> None:
    schedule = Schedule(3, ALL_FAMILIES)
    keys = [(f"tx-{i}", op, n) for i in range(50) for op in OPERATIONS for n in (1, 2)]
    forward = {k: schedule.proxy_fault(*k) for k in keys}
    backward = {k: schedule.proxy_fault(*k) for k in reversed(keys)}
    assert forward == backward


def test_the_transfer_plan_replays_from_the_seed() -> None:
    assert plan(5, 100) == plan(5, 100)
    assert plan(5, 100) != plan(6, 100)
    assert all(t.source != t.target for t in plan(5, 100))


def test_credit_faults_only_hit_credits_and_every_family_occurs() -> None:
    schedule = Schedule(11, ALL_FAMILIES)
    seen: dict[str, set[Family]] = {op: set() for op in OPERATIONS}
    for i in range(500):
        for op in OPERATIONS:
            fault = schedule.proxy_fault(f"tx-{i}", op, 1)
            if fault.family is not None:
                seen[op].add(fault.family)
    assert seen["credit"] == {
        Family.CREDIT_BEFORE,
        Family.CREDIT_AFTER,
        Family.DELAY,
        Family.DUPLICATE,
    }
    assert seen["debit"] == {Family.DELAY, Family.DUPLICATE}


def test_a_delay_exceeds_the_attempt_timeout_range() -> None:
    rates = Rates(delay=1.0, delay_range=(0.4, 2.5))
    delays = [
        Schedule(1, (Family.DELAY,), rates).proxy_fault(f"t{i}", "debit", 1) for i in range(200)
    ]
    assert all(f.family is Family.DELAY and 0.4 <= f.delay <= 2.5 for f in delays)


def test_families_that_are_off_are_never_scheduled() -> None:
    schedule = Schedule(2, (Family.DUPLICATE,))
    families = {schedule.proxy_fault(f"t{i}", "credit", 1).family for i in range(500)}
    assert families == {None, Family.DUPLICATE}
    assert schedule.kill_points(Family.KILL_ORCHESTRATOR, 1000) == ()


def test_kill_points_are_within_the_run_and_at_least_one_per_family() -> None:
    schedule = Schedule(4, ALL_FAMILIES)
    for family in (Family.KILL_ORCHESTRATOR, Family.KILL_ACCOUNTS):
        points = schedule.kill_points(family, 50)
        assert len(points) >= 1
        assert all(1 <= p < 50 for p in points)
    assert len(schedule.kill_points(Family.KILL_ORCHESTRATOR, 2000)) == 12


def test_parse_families_accepts_a_list_and_refuses_unknown_names() -> None:
    assert parse_families("delay, credit-before") == (Family.CREDIT_BEFORE, Family.DELAY)
    with pytest.raises(ValueError, match="unknown fault family: nope"):
        parse_families("delay,nope")
    with pytest.raises(ValueError, match="no fault family"):
        parse_families(" , ")
