"""Reduced chaos runs of the classes saga: every fault family of the saga on real processes, and
the rosters must stay exact.

Each seed POSTs group assignments to `/sagas/classes` through the fault proxy, which stands in
front of the account service's process and the pupils and classes services it hosts, while the
orchestrator and that process are SIGKILLed at seeded points. The report must be clean (every
saga terminal, a clean class audit, every saga matching both services' records) and every
family must have been injected, or the run proved nothing. The test then reads the saga log and
both services' SQLite files itself (plain SQL, no product or tool code), so a tool whose checks
always came back clean could not turn a product that overfills a class green.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from sagabank_tools.chaos.runner import ChaosConfig, run
from sagabank_tools.chaos.schedule import CLASSES_FAMILIES

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

GROUPS = 50


def books_problems(workdir: Path, *, groups: int) -> list[str]:
    """The run's books, read here: one terminal saga per group; every roster equals the pupils
    assigned to its class, within its capacity; a completed saga's pupils are assigned and
    enrolled under its keys, any other saga's under neither."""
    found: list[str] = []
    db = sqlite3.connect(workdir / "sagas.db")
    try:
        for name in ("pupils", "classes"):
            db.execute(f"ATTACH DATABASE ? AS {name}_db", (str(workdir / f"{name}.db"),))
        sagas = dict(db.execute("SELECT saga_id, status FROM sagas WHERE definition = 'classes'"))
        if len(sagas) != groups:
            found.append(f"{len(sagas)} classes sagas logged, {groups} planned")
        found += [
            f"{s} is {st}"
            for s, st in sagas.items()
            if st not in ("completed", "compensated", "rejected")
        ]
        assigned = set(
            db.execute("SELECT pupil_id, class_id FROM pupils_db.pupils WHERE class_id IS NOT NULL")
        )
        enrolled = set(db.execute("SELECT pupil_id, class_id FROM classes_db.roster"))
        if assigned != enrolled:
            found.append(
                f"assigned but not enrolled {sorted(assigned - enrolled)[:5]}, "
                f"enrolled but not assigned {sorted(enrolled - assigned)[:5]}"
            )
        found += [
            f"class {c} holds {n} of {cap}"
            for c, cap, n in db.execute(
                "SELECT c.class_id, c.capacity, COUNT(r.pupil_id) FROM classes_db.classes c"
                " LEFT JOIN classes_db.roster r ON r.class_id = c.class_id GROUP BY c.class_id"
            )
            if n > cap
        ]
        by_saga: dict[str, set[str]] = defaultdict(set)
        for (key,) in db.execute(
            "SELECT assigned_key FROM pupils_db.pupils WHERE assigned_key IS NOT NULL"
        ):
            by_saga[key.rpartition(":")[0]].add("assign")
        for (key,) in db.execute("SELECT enrolled_key FROM classes_db.roster"):
            by_saga[key.rpartition(":")[0]].add("enrol")
        for saga, status in sagas.items():
            held = by_saga.pop(saga, set())
            if held != ({"assign", "enrol"} if status == "completed" else set()):
                found.append(f"{saga} is {status} but holds {sorted(held)}")
        found += [f"rows of {saga}, a saga not in the log" for saga in by_saga]
    finally:
        db.close()
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_classes_chaos_run_with_every_fault_family_keeps_every_roster_exact(
    seed: int, tmp_path: Path
) -> None:
    config = ChaosConfig(
        seed=seed, sagas=GROUPS, saga="classes", workdir=tmp_path, settle_timeout=60
    )
    outcome = await run(config)
    report = outcome.report

    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == GROUPS
    assert report.outcomes.get("completed", 0) > 0
    assert report.outcomes.get("compensated", 0) > 0
    assert {f.value for f in CLASSES_FAMILIES} <= {f for f, n in report.faults.items() if n > 0}
    # The plan's refusals happened: a pupil already placed, and a full class.
    assert {"pupil_assigned", "class_full"} <= report.refusals.keys()
    assert 0 < report.stock["enrolled"] <= report.stock["places"]
    # Delays and duplicates reached both services behind the proxy.
    for family in ("delay", "duplicate"):
        hit = {op.partition("/")[0] for f, op in outcome.proxy.targets if f.value == family}
        assert {"pupils", "classes"} <= hit, (family, hit)
    assert report.strangers_refused, "the run was made without the service token on"
    assert books_problems(tmp_path, groups=GROUPS) == [], report.replay_command()
