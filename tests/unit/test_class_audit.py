"""The classes saga's invariants (`service_layer.class_audit`) on books built by hand: a clean
book passes, and each broken invariant is named (a pupil in two classes, a roster that differs
from the assignments, a class over capacity, a settled saga half done, a service's own audit
finding)."""

from __future__ import annotations

from typing import Any

import pytest

from repository_after.service_layer.class_audit import ClassBooks, audit_classes

CLEAN: dict[str, Any] = {
    "pupils": [
        {"pupil_id": "p1", "class_id": "c1", "assigned_key": "s1:assign"},
        {"pupil_id": "p2", "class_id": "c1", "assigned_key": "s1:assign"},
        {"pupil_id": "p3", "class_id": None, "assigned_key": None},
    ],
    "classes": [
        {
            "class_id": "c1",
            "capacity": 2,
            "roster": [
                {"pupil_id": "p1", "enrolled_key": "s1:enrol"},
                {"pupil_id": "p2", "enrolled_key": "s1:enrol"},
            ],
        },
        {"class_id": "c2", "capacity": 1, "roster": []},
    ],
    "sagas": {"s1": "completed", "s2": "compensated", "s3": "rejected"},
}
OK_AUDIT = {"ok": True, "violations": []}


def books(**changes: Any) -> ClassBooks:
    values = {**CLEAN, **changes}
    return ClassBooks(
        pupils=values["pupils"],
        pupils_audit=values.get("pupils_audit", OK_AUDIT),
        classes=values["classes"],
        classes_audit=values.get("classes_audit", OK_AUDIT),
        sagas=values["sagas"],
    )


def test_a_clean_book_has_no_violation() -> None:
    assert audit_classes(books()) == []


def roster(*rows: tuple[str, str]) -> list[dict[str, str]]:
    return [{"pupil_id": p, "enrolled_key": k} for p, k in rows]


def test_a_pupil_on_two_rosters_is_in_two_classes() -> None:
    classes = [
        CLEAN["classes"][0],
        {"class_id": "c2", "capacity": 1, "roster": roster(("p1", "s1:enrol"))},
    ]
    found = audit_classes(books(classes=classes))
    assert "pupil 'p1' is on the rosters of ['c1', 'c2']" in found


def test_a_pupil_listed_twice_is_named() -> None:
    twice = [*CLEAN["pupils"], {"pupil_id": "p3", "class_id": None, "assigned_key": None}]
    assert audit_classes(books(pupils=twice)) == ["pupil 'p3' is listed 2 times"]


@pytest.mark.parametrize(
    ("pupils", "expected"),
    [
        (  # on c1's roster, but the pupils service has it in no class
            [
                {"pupil_id": "p1", "class_id": None, "assigned_key": None},
                CLEAN["pupils"][1],
                CLEAN["pupils"][2],
            ],
            "pupil 'p1' is on class 'c1''s roster, in no class",
        ),
        (  # in c2 by the pupils service, on c1's roster
            [
                {"pupil_id": "p1", "class_id": "c2", "assigned_key": "s1:assign"},
                *CLEAN["pupils"][1:],
            ],
            "pupil 'p1' is on class 'c1''s roster, in 'c2'",
        ),
        (  # in c1 by the pupils service, on no roster, its saga settled
            [*CLEAN["pupils"][:2], {"pupil_id": "p3", "class_id": "c1", "assigned_key": "s9:x"}],
            "pupil 'p3' is in class 'c1' but on no roster (saga 's9' unknown)",
        ),
    ],
)
def test_every_roster_equals_the_pupils_assigned_to_it(
    pupils: list[dict[str, Any]], expected: str
) -> None:
    assert expected in audit_classes(books(pupils=pupils))


def test_a_pupil_assigned_by_a_saga_still_running_may_wait_for_its_roster() -> None:
    pupils = [
        *CLEAN["pupils"][:2],
        {"pupil_id": "p3", "class_id": "c2", "assigned_key": "s4:assign"},
    ]
    assert audit_classes(books(pupils=pupils, sagas={**CLEAN["sagas"], "s4": "enrolling"})) == []
    parked = audit_classes(
        books(pupils=pupils, sagas={**CLEAN["sagas"], "s4": "failed_needs_attention"})
    )
    assert any("'p3' is in class 'c2' but on no roster" in v for v in parked)


def test_a_class_over_its_capacity_is_named() -> None:
    classes = [{**CLEAN["classes"][0], "capacity": 1}, CLEAN["classes"][1]]
    assert audit_classes(books(classes=classes)) == ["class 'c1' holds 2 pupils, capacity 1"]


def test_a_completed_saga_must_have_placed_its_whole_group() -> None:
    # p2 enrolled by s1 but assigned by another saga: s1 is half done
    pupils = [
        CLEAN["pupils"][0],
        {"pupil_id": "p2", "class_id": "c1", "assigned_key": "s5:assign"},
        CLEAN["pupils"][2],
    ]
    found = audit_classes(books(pupils=pupils, sagas={"s1": "completed"}))
    assert "saga 's1' is completed: assigned ['p1'], enrolled ['p1', 'p2']" in found


@pytest.mark.parametrize("status", ["compensated", "rejected"])
def test_an_undone_saga_must_have_left_nothing(status: str) -> None:
    found = audit_classes(books(sagas={"s1": status}))
    assert f"saga 's1' is {status}: assigned ['p1', 'p2'], enrolled ['p1', 'p2']" in found


def test_a_completed_saga_that_placed_nobody_is_named() -> None:
    found = audit_classes(books(sagas={**CLEAN["sagas"], "s7": "completed"}))
    assert found == ["saga 's7' is completed: assigned [], enrolled []"]


def test_the_services_own_findings_are_violations() -> None:
    bad = {"ok": False, "violations": ["x"]}
    found = audit_classes(books(pupils_audit=bad, classes_audit=bad))
    assert found == ["pupils: x", "classes: x"]


def test_an_undone_saga_whose_pupils_stayed_assigned_is_half_done() -> None:
    """The pupils' side left behind (an `unassign` that never ran): the saga is compensated, its
    roster empty, two of its pupils still in the class."""
    pupils = [
        *CLEAN["pupils"],
        {"pupil_id": "p4", "class_id": "c2", "assigned_key": "s2:assign"},
        {"pupil_id": "p5", "class_id": "c2", "assigned_key": "s2:assign"},
    ]
    found = audit_classes(books(pupils=pupils))
    assert "saga 's2' is compensated: assigned ['p4', 'p5'], enrolled []" in found
