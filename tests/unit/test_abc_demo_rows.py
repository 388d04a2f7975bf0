"""`sagabank demo --saga abc`'s choices and verdict (`entrypoints/abc_demo.py`): which rows of
the failure table `--fail` names, where each service's table goes (`--database-url`), and the
comparison of what the processes showed with the row, which decides the exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from repository_after.entrypoints.abc_demo import (
    SEED_ROWS,
    expected_calls,
    matches,
    pick_rows,
    service_databases,
)
from repository_after.services.abc_matrix import ROWS, find_row
from repository_after.services.switched import Fault


def test_by_default_the_seed_rows_run_nothing_fails_then_a_b_c_each_refuse() -> None:
    assert pick_rows([]) == SEED_ROWS
    assert [row.name for row in SEED_ROWS] == ["none", "A refuse", "B refuse", "C refuse"]
    assert [row.status for row in SEED_ROWS] == [
        "completed",
        "rejected",
        "compensated",
        "compensated",
    ]


def test_fail_names_rows_of_the_matrix_by_service_fault_and_once() -> None:
    picked = pick_rows(["B:refuse", "C:unknown", "A:slow_after:once", "none", "B:refuse"])
    assert picked == (
        find_row("B", Fault.REFUSE, None),
        find_row("C", Fault.UNKNOWN_BEFORE, None),
        find_row("A", Fault.SLOW_AFTER, 1),
        find_row(None, None, None),
    )
    assert pick_rows(["all"]) == ROWS


@pytest.mark.parametrize("value", ["D:refuse", "B:sometimes", "B:refuse:twice", "B", "refuse"])
def test_fail_refuses_what_names_no_row(value: str) -> None:
    with pytest.raises(typer.BadParameter, match="expected"):
        pick_rows([value])


def test_each_service_gets_its_own_database(tmp_path: Path) -> None:
    assert service_databases([], tmp_path) == dict.fromkeys(
        "ABC", f"sqlite:///{tmp_path / 'demo.db'}"
    )
    template = "mysql://root@127.0.0.1:3306/abc_{service}"
    assert service_databases([template], tmp_path) == {
        "A": "mysql://root@127.0.0.1:3306/abc_a",
        "B": "mysql://root@127.0.0.1:3306/abc_b",
        "C": "mysql://root@127.0.0.1:3306/abc_c",
    }
    three = ["mysql://h/x", "mysql://h/y", "mysql://h/z"]
    assert service_databases(three, tmp_path) == dict(zip("ABC", three, strict=True))
    for shared in (["mysql://h/x"], ["mysql://h/x", "mysql://h/x", "mysql://h/y"]):
        with pytest.raises(typer.BadParameter, match="its own database"):
            service_databases(shared, tmp_path)


def test_a_row_matches_only_its_own_status_calls_and_tables() -> None:
    row = find_row("C", Fault.REFUSE, None)
    calls = expected_calls(row)
    assert calls == {
        "A": ["A.do 200 done", "A.undo 200 undone"],
        "B": ["B.do 200 done", "B.undo 200 undone"],
        "C": ["C.do 409 refused"],
    }
    none_kept = {"A": False, "B": False, "C": False}
    assert matches(row, status="compensated", calls=calls, kept=none_kept)
    assert not matches(row, status="completed", calls=calls, kept=none_kept)
    assert not matches(
        row, status="compensated", calls={**calls, "A": calls["A"][:1]}, kept=none_kept
    )
    assert not matches(row, status="compensated", calls=calls, kept={**none_kept, "B": True})
    other = find_row("B", Fault.REFUSE, None)  # same status, other calls
    assert not matches(row, status="compensated", calls=expected_calls(other), kept=none_kept)
