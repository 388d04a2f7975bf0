"""`sagabank demo --saga classes` as a real process: the pupils and classes services started on
loopback (hosted by one `sagabank serve --role accounts` child), group assignments run with 30 %
injected faults on `assign`, `unassign` and `enrol`, every book checked.

Run twice on one data dir (the second run opens a new school on the same books); the plan makes
refusals happen (a pupil already placed, a full class) and the faults make unknown outcomes
happen, both settled. Then the databases themselves are read, apart from anything the demo
printed: every roster equals the pupils assigned to its class, no class over capacity, every
completed saga placed its whole group and every other saga nothing. A roster tampered with after
that makes a third run exit 1.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from repository_after.domain.saga import TERMINAL
from tests.e2e.test_demo_resume import demo_env

pytestmark = pytest.mark.e2e

GROUPS = 40


def classes_demo(
    data_dir: Path, *extra: str, groups: int = GROUPS
) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "repository_after.entrypoints.cli", "demo", "--saga", "classes"]
    args += ["--data-dir", str(data_dir), "--assignments", str(groups), "--seed", "5", *extra]
    return subprocess.run(
        args, env=demo_env(), capture_output=True, text=True, timeout=240, check=False
    )


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_two_runs_check_out_on_one_data_dir_and_a_tampered_roster_fails_the_third(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = classes_demo(data)
    printed = first.stdout.splitlines()
    assert "class audit: ok" in printed, first.stdout[-4000:] + first.stderr[-2000:]
    assert "unsettled sagas: 0" in printed
    assert "result: ok" in printed
    assert first.returncode == 0, first.stderr[-2000:]

    second = classes_demo(data, "--json")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    result = json.loads(second.stdout)
    assert result["class_audit"] == {"ok": True, "violations": []}
    assert (result["unsettled"], result["ok"]) == (0, True)
    assert sum(result["outcomes"].values()) == GROUPS
    # Every outcome met: placed, undone after a refusal or an unknown outcome, refused.
    assert all(n > 0 for label, n in result["outcomes"].items() if label != "parked")
    assert {"class_full", "pupil_assigned"} <= result["refused_because"].keys()
    for where in ("pupils assign", "classes enrol"):
        assert sum(result["faults_injected"][where].values()) > 0, where

    # The databases, read directly.
    sagas = dict(rows(data / "demo-classes-sagas.db", "SELECT saga_id, status FROM sagas"))
    assert len(sagas) == 2 * GROUPS
    assert set(sagas.values()) <= {s.value for s in TERMINAL}
    books = data / "demo-classes-pupils.db", data / "demo-classes-classes.db"
    pupils = rows(books[0], "SELECT pupil_id, class_id, assigned_key FROM pupils")
    roster = rows(books[1], "SELECT pupil_id, class_id, enrolled_key FROM roster")
    capacity = dict(rows(books[1], "SELECT class_id, capacity FROM classes"))
    assigned = {(p, c) for p, c, _ in pupils if c is not None}
    assert assigned == {(p, c) for p, c, _ in roster}
    assert len(roster) > 0
    held: dict[object, int] = defaultdict(int)
    for _, class_id, _ in roster:
        held[class_id] += 1
    assert all(n <= capacity[c] for c, n in held.items())
    placed_by = {str(k).rpartition(":")[0] for _, _, k in roster}
    assert placed_by == {s for s, status in sagas.items() if status == "completed"}
    assert {str(k).rpartition(":")[0] for *_, k in pupils if k is not None} == placed_by

    # A roster tampered with between two runs: the next run names it and exits 1.
    pupil = next(p for p, c, _ in pupils if c is None)
    conn = sqlite3.connect(books[1])
    with conn:
        conn.execute(
            "INSERT INTO roster (pupil_id, class_id, enrolled_key) VALUES (?, ?, 'forged:enrol')",
            (pupil, next(iter(capacity))),
        )
    conn.close()
    tampered = classes_demo(data, groups=5)
    assert tampered.returncode == 1, tampered.stdout[-3000:]
    assert f"pupil {pupil!r} is on class" in tampered.stdout
    assert "result: VIOLATIONS (exit status 1)" in tampered.stdout.splitlines()
