"""What the classes demo found (`summarise`, pure) and how it is shown (`print_report`).

Besides the classes audit (`service_layer.class_audit`, over every pupil and class the services
hold), this run's school is checked against its plan (`run_violations`): every completed group
is in its planned class and on that class's roster, exactly; no pupil of the school is in a
class but by a completed group of this run; no class of the school holds more than its
capacity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from repository_after.domain.saga import TERMINAL, SagaState, SagaStatus
from repository_after.entrypoints.classes_plan import School
from repository_after.entrypoints.order_demo_report import why_cancelled
from repository_after.service_layer.class_audit import ClassBooks
from repository_after.service_layer.settlements import Settlements

#: A classes saga's status, as the demo names its outcome.
OUTCOMES = {
    SagaStatus.COMPLETED: "assigned and enrolled",
    SagaStatus.COMPENSATED: "undone (compensated)",
    SagaStatus.REJECTED: "refused (nothing done)",
    SagaStatus.FAILED_NEEDS_ATTENTION: "parked",
}
SETTLEMENT_LABELS = {
    "retried_to_success": "unknown outcome, retried to success",
    "settled_already_applied": "unknown enrol, void_enrol: already_applied (completed)",
    "settled_voided": "unknown enrol, void_enrol: voided (pupils unassigned)",
    "compensated_after_unknown": "unknown assign, compensated (unassign)",
}


def run_violations(school: School, states: Mapping[str, SagaState], books: ClassBooks) -> list[str]:
    """This run's groups against the books (module docstring)."""
    found = []
    in_class = {p["pupil_id"]: p["class_id"] for p in books.pupils}
    rosters = {c["class_id"]: {r["pupil_id"] for r in c["roster"]} for c in books.classes}
    placed: set[str] = set()
    for group in school.groups:
        if states[group.saga_id].status != SagaStatus.COMPLETED:
            continue
        placed.update(group.pupils)
        wrong = [p for p in group.pupils if in_class.get(p) != group.class_id]
        if wrong or not set(group.pupils) <= rosters.get(group.class_id, set()):
            found.append(f"group {group.saga_id} completed but {wrong or group.pupils} not placed")
    for pupil_id in school.pupils:
        if in_class.get(pupil_id) is not None and pupil_id not in placed:
            found.append(f"pupil {pupil_id!r} is in a class but no completed group placed it")
    for class_id, capacity in school.classes.items():
        if len(rosters.get(class_id, ())) > capacity:
            found.append(f"class {class_id!r} holds {len(rosters[class_id])} of {capacity}")
    return found


def summarise(school: School, states: Mapping[str, SagaState], **found: Any) -> dict[str, Any]:
    """The run as one JSON-able dict; `ok` is the exit status's verdict."""
    groups: Sequence[Any] = school.groups
    statuses = Counter(states[g.saga_id].status for g in groups)
    outcomes = {label: statuses.get(status, 0) for status, label in OUTCOMES.items()}
    refused = Counter(
        why_cancelled(states[g.saga_id].history)
        for g in groups
        if states[g.saga_id].status in (SagaStatus.COMPENSATED, SagaStatus.REJECTED)
    )
    settlements = Settlements()
    for group in groups:
        settlements.add(states[group.saga_id].history)
    unsettled = sum(n for s, n in statuses.items() if s not in TERMINAL) + found["left_over"]
    books: ClassBooks = found["books"]
    rosters = {c["class_id"]: len(c["roster"]) for c in books.classes}
    violations = found["class_violations"] + found["run_violations"]
    return {
        "saga": "classes",
        "assignments": len(groups),
        **found["options"],
        "resumed": found["resumed"],
        "outcomes": outcomes,
        "refused_because": dict(sorted(refused.items())),
        "faults_injected": found["faults"],
        "settlements": settlements.as_dict(),
        "classes": {
            c: {"capacity": n, "enrolled": rosters.get(c, 0)} for c, n in school.classes.items()
        },
        "pupils_placed": sum(rosters.get(c, 0) for c in school.classes),
        "class_audit": {"ok": not violations, "violations": violations},
        "unsettled": unsettled,
        "ok": not violations and unsettled == 0,
    }


def print_report(result: Mapping[str, Any]) -> None:
    out = Console()
    summary = Table(
        title=f"{result['assignments']} group assignments, faults {result['fault_rate']:.0%} "
        f"({result['fault_mode']}) on the pupils and the roster, retries {result['retries']}"
    )
    summary.add_column("")
    summary.add_column("value", justify="right")
    for label, n in result["outcomes"].items():
        summary.add_row(label, str(n))
    for reason, n in result["refused_because"].items():
        summary.add_row(f"  because: {reason}", str(n))
    for where, points in result["faults_injected"].items():
        summary.add_row(
            f"faults injected on {where}",
            f"{points['before']} before, {points['after']} after applying",
        )
    for key, label in SETTLEMENT_LABELS.items():
        summary.add_row(label, str(result["settlements"][key]))
    if result["resumed"]:
        summary.add_row("resumed from a previous run", str(sum(result["resumed"].values())))
    summary.add_row("pupils placed in this run's classes", str(result["pupils_placed"]))
    out.print(summary)
    classes = Table(title="classes: enrolled of capacity")
    classes.add_column("class")
    classes.add_column("enrolled", justify="right")
    for class_id, row in result["classes"].items():
        classes.add_row(class_id, f"{row['enrolled']} of {row['capacity']}")
    out.print(classes)
    audit = result["class_audit"]
    lines = (
        ["class audit: ok"]
        if audit["ok"]
        else [
            f"class audit: {len(audit['violations'])} violation(s)",
            *(f"  {v}" for v in audit["violations"]),
        ]
    )
    lines.append(f"unsettled sagas: {result['unsettled']}")
    lines.append("result: " + ("ok" if result["ok"] else "VIOLATIONS (exit status 1)"))
    for line in lines:
        out.print(line, soft_wrap=True, markup=False, highlight=False)
