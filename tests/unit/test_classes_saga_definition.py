"""The classes saga's definition and its registration: assign (compensatable, `unassign`) then
enrol (the pivot, settled by `void_enrol`), every role of a step under `<saga>:<step>`, its
retry horizon within the retention check's, a pinned shape hash, and its strict parameter model
(a class id and 1..50 distinct pupil ids)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pytest
from pydantic import ValidationError

from repository_after.bootstrap import saga_types
from repository_after.config import Settings
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.saga import InvalidTransition, KeyScheme, StepKind, StepRole
from repository_after.domain.sagas import DEFINITIONS

PARAMS: dict[str, Any] = {"class_id": "c-1", "pupils": ["p1", "p2"]}


def test_the_classes_saga_assigns_the_pupils_then_enrols_them_as_its_pivot() -> None:
    shape = [
        (s.name, s.service, s.action, s.kind, s.compensation, s.settlement)
        for s in CLASS_ASSIGNMENT.steps
    ]
    assert shape == [
        ("assign", "pupils", "assign", StepKind.COMPENSATABLE, "unassign", None),
        ("enrol", "classes", "enrol", StepKind.PIVOT, None, "void_enrol"),
    ]
    assert CLASS_ASSIGNMENT.name == "classes"
    assert CLASS_ASSIGNMENT.services == {"pupils", "classes"}


def test_every_role_of_a_step_shares_its_per_step_key() -> None:
    assert CLASS_ASSIGNMENT.keys is KeyScheme.STEP
    keys = {}
    for i, step in enumerate(CLASS_ASSIGNMENT.steps):
        for role in StepRole:
            with suppress(InvalidTransition):
                keys[step.name, role] = CLASS_ASSIGNMENT.key("s-1", CLASS_ASSIGNMENT.call(i, role))
    assert keys == {
        ("assign", StepRole.ACTION): "s-1:assign",
        ("assign", StepRole.COMPENSATION): "s-1:assign",
        ("enrol", StepRole.ACTION): "s-1:enrol",
        ("enrol", StepRole.SETTLEMENT): "s-1:enrol",
    }


def test_both_steps_carry_the_class_and_the_group() -> None:
    assert [s.body(PARAMS, {}) for s in CLASS_ASSIGNMENT.steps] == [PARAMS, PARAMS]


def test_its_horizon_is_within_the_retention_check() -> None:
    # two actions (forward), one compensation and one settlement (settle)
    horizon = CLASS_ASSIGNMENT.retry_horizon(forward_deadline=30, settle_deadline=120)
    assert horizon == 2 * 30 + 2 * 120
    assert Settings(retry_deadline=30, settle_deadline=120).retry_horizon() >= horizon


def test_its_shape_is_pinned() -> None:
    """A change to the steps changes this hash: register it as version 2 instead."""
    assert (CLASS_ASSIGNMENT.version, CLASS_ASSIGNMENT.shape_hash()) == (1, "b3d24b2acf35d5e4")


def test_the_server_registers_it_with_its_parameter_model() -> None:
    types = saga_types()
    assert types.definitions() == DEFINITIONS
    assert DEFINITIONS["classes"] is CLASS_ASSIGNMENT
    assert types.latest("classes") is CLASS_ASSIGNMENT
    assert types.parameters("classes", PARAMS) == PARAMS


@pytest.mark.parametrize(
    "changes",
    [
        {"class_id": ""},
        {"class_id": "c" * 65},
        {"class_id": "has space"},
        {"class_id": 1},
        {"pupils": []},
        {"pupils": [f"p{i}" for i in range(51)]},
        {"pupils": ["p1", "p1"]},
        {"pupils": ["bad/id"]},
        {"pupils": "p1"},
        {"pupils": [1]},
        {"note": "x"},
    ],
)
def test_a_bad_group_is_refused_by_the_parameter_model(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        saga_types().parameters("classes", {**PARAMS, **changes})


def test_the_group_limits_are_inclusive() -> None:
    fifty = {"pupils": [f"p{i}" for i in range(50)]}
    for changes in (fifty, {"pupils": ["p"]}, {"class_id": "c" * 64}):
        assert saga_types().parameters("classes", {**PARAMS, **changes})
