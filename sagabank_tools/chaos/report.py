"""The report of a chaos run: figures, violations, and how to replay it.

A run is green only if nothing in `violations` is listed: money conserved, no negative balance,
every saga terminal, nothing applied twice, a clean account audit, every saga matching the
services' records, every saga's POST answered as the API promises, and the account service's
process refusing calls made without the service token (so the run proves the token was on).
An order run adds the order audit (`service_layer.order_audit`: stock, orders and money per
order) and shows the stock's totals; a classes run the class audit (`service_layer.class_audit`:
one class per pupil, rosters equal to the assignments, capacities, no half-done saga) and the
places its classes have and hold. The same fields, table and JSON for every saga type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from repository_after.domain.money import format_minor
from repository_after.domain.saga import TERMINAL
from sagabank_tools.chaos.schedule import Family


@dataclass
class ChaosReport:
    seed: int
    saga: str  # the saga type driven: "transfer", "order" or "classes"
    sagas: int  # how many the plan holds
    families: list[str]
    concurrency: int
    outcomes: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)  # business refusals met, by error
    faults: dict[str, int] = field(default_factory=dict)
    late_deliveries: dict[str, int] = field(default_factory=dict)  # what a late request met
    batched_operations: int = 0  # operations the orchestrator sent inside a `POST /batch`
    resubmitted: int = 0
    recovered_after_restart: int = 0
    parked_then_retried: int = 0
    money_before: int = 0
    money_after: int = 0
    negative_balances: list[str] = field(default_factory=list)
    non_terminal: list[str] = field(default_factory=list)
    applied_twice: list[str] = field(default_factory=list)
    audit_violations: list[str] = field(default_factory=list)  # the account service's audit
    order_audit_violations: list[str] = field(default_factory=list)
    class_audit_violations: list[str] = field(default_factory=list)
    # An order run's totals over its SKUs; a classes run's places and enrolled pupils.
    stock: dict[str, int] = field(default_factory=dict)
    record_mismatches: list[str] = field(default_factory=list)
    unexpected_answers: list[str] = field(default_factory=list)
    # A call without the service token was refused (401): the run had the credential on.
    strangers_refused: bool = False
    elapsed_seconds: float = 0.0
    workdir: str = ""
    backend: str = "sqlite"
    mode: str = "orchestration"  # or "choreography" (`choreo_runner.py`: broker faults)
    timed_out: list[str] = field(default_factory=list)  # choreography: a message went missing
    dead_letters_left: int = 0  # choreography: messages left in the dead-letter queue

    @property
    def violations(self) -> list[str]:
        found: list[str] = []
        if self.money_after != self.money_before:
            found.append(f"money not conserved: {self.money_before} -> {self.money_after}")
        found += [f"negative balance: {v}" for v in self.negative_balances]
        found += [f"not terminal: {v}" for v in self.non_terminal]
        found += [f"applied twice: {v}" for v in self.applied_twice]
        found += [f"audit: {v}" for v in self.audit_violations]
        found += [f"order audit: {v}" for v in self.order_audit_violations]
        found += [f"class audit: {v}" for v in self.class_audit_violations]
        found += [f"records: {v}" for v in self.record_mismatches]
        found += [f"answer: {v}" for v in self.unexpected_answers]
        found += [f"timed out (a message lost or stalled): {v}" for v in self.timed_out]
        if not self.strangers_refused:
            found.append("the account service's process took a call without the service token")
        return found

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay_command(self) -> str:
        count = {
            "transfer": f"--transfers {self.sagas}",
            "order": f"--saga order --orders {self.sagas}",
        }.get(self.saga, f"--saga {self.saga} --assignments {self.sagas}")
        if self.mode == "choreography":
            count = f"--mode choreography {count}"
        return (
            f"sagabank chaos --seed {self.seed} {count} "
            f"--faults {','.join(self.families)} --concurrency {self.concurrency}"
            + (
                f" --database-url <an empty {self.backend} database>"
                if self.backend != "sqlite"
                else ""
            )
        )

    def record_end(
        self,
        *,
        accounts: dict[str, Any],
        statuses: dict[str, str],
        audit: dict[str, Any],
        unexpected: list[str],
        applied_twice: list[str],
    ) -> None:
        """What every run reads at its end, in both modes: the books (`GET /accounts`), each
        saga's status, the audit, the answers the load did not expect, the records applied
        twice."""
        self.money_after = accounts["total"]
        self.negative_balances = [
            f"{a['account_id']} = {a['balance']}" for a in accounts["accounts"] if a["balance"] < 0
        ]
        self.non_terminal = sorted(f"{t} {s}" for t, s in statuses.items() if s not in TERMINAL)
        self.audit_violations = list(audit["violations"])
        self.unexpected_answers = unexpected
        self.applied_twice = applied_twice

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "violations": self.violations,
            "ok": self.ok,
            "replay": self.replay_command(),
        }


def _count_rows(table: Table, title: str, counts: dict[str, int]) -> None:
    for key, value in sorted(counts.items()):
        table.add_row(f"{title}: {key}", str(value))


def render(report: ChaosReport, console: Console) -> None:
    noun = "class assignments" if report.saga == "classes" else f"{report.saga}s"
    table = Table(
        title=f"chaos seed {report.seed}: {report.sagas} {noun}, "
        f"concurrency {report.concurrency}, {report.elapsed_seconds:.1f} s"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    _count_rows(table, "outcome", report.outcomes)
    _count_rows(table, "refused", report.refusals)
    choreography = report.mode == "choreography"
    for family in () if choreography else Family:  # a choreography run's are its own, below
        if family.value in report.families:
            table.add_row(f"fault: {family.value}", str(report.faults.get(family.value, 0)))
    if choreography:
        for name, count in report.faults.items():
            table.add_row(f"fault: {name}", str(count))
        table.add_row("dead letters left (info)", str(report.dead_letters_left))
        timed = str(len(report.timed_out))
        table.add_row(
            "sagas timed out by the tracker", f"[red]{timed}[/red]" if report.timed_out else timed
        )
    _count_rows(table, "late delivery met", report.late_deliveries)
    if not choreography:  # no orchestrator, no HTTP calls between services to batch
        table.add_row("operations sent in batches", str(report.batched_operations))
        table.add_row("sagas recovered at restart", str(report.recovered_after_restart))
    died = "the service" if choreography else "orchestrator"
    table.add_row(f"{noun} re-submitted ({died} died)", str(report.resubmitted))
    table.add_row("parked, retried by operator", str(report.parked_then_retried))
    table.add_row("money before", format_minor(report.money_before))
    table.add_row("money after", format_minor(report.money_after))
    _count_rows(table, "stock", report.stock)
    refused = "yes" if report.strangers_refused else "[red]no[/red]"
    table.add_row("calls without the service token refused", refused)
    rows = [
        ("negative balances", report.negative_balances),
        ("non-terminal sagas", report.non_terminal),
        ("operations applied twice", report.applied_twice),
        ("audit violations", report.audit_violations),
        *(
            [("order audit violations", report.order_audit_violations)]
            if report.saga == "order"
            else []
        ),
        *(
            [("class audit violations", report.class_audit_violations)]
            if report.saga == "classes"
            else []
        ),
        ("sagas contradicting the records", report.record_mismatches),
        ("unexpected answers", report.unexpected_answers),
    ]
    for label, items in rows:
        table.add_row(label, f"[red]{len(items)}[/red]" if items else "0")
    console.print(table)
    for violation in report.violations[:50]:
        console.print(f"[red]VIOLATION[/red] {violation}")
    if report.ok:
        console.print("[green]chaos run clean: money conserved, every saga settled[/green]")
    else:
        console.print(f"[red]chaos run FAILED[/red]; artifacts in {report.workdir}")
        console.print(f"replay with: {report.replay_command()}")
