"""What the order demo found (`summarise`, pure) and how it is shown (`print_report`).

Besides the services' audits and the order audit (`service_layer.order_audit`), the run itself
is checked against the books read before and after it (`run_violations`): the total money did
not change; the merchants gained, and the customers lost, exactly the totals of this run's
confirmed orders; per SKU, the units sold grew by exactly what those orders bought, and nothing
this run reserved is still held. The account service's audit is shown as it answered, each
finding on its own line: nothing is filtered out of it here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from repository_after.domain.money import format_minor
from repository_after.domain.saga import (
    TERMINAL,
    EventKind,
    Outcome,
    SagaEvent,
    SagaState,
    SagaStatus,
    StepRole,
)
from repository_after.entrypoints.order_plan import PlannedOrder
from repository_after.service_layer.settlements import Settlements

#: An order saga's status, as the demo names its outcome.
OUTCOMES = {
    SagaStatus.COMPLETED: "confirmed",
    SagaStatus.COMPENSATED: "cancelled",
    SagaStatus.REJECTED: "rejected",
    SagaStatus.FAILED_NEEDS_ATTENTION: "parked",
}
SETTLEMENT_LABELS = {
    "retried_to_success": "unknown outcome, retried to success",
    "settled_already_applied": "unknown payment, void_credit: already_applied (confirmed)",
    "settled_voided": "unknown payment, void_credit: voided (cancelled)",
    "compensated_after_unknown": "unknown action before the payment, compensated",
}
Stock = Mapping[str, Mapping[str, int]]


def why_cancelled(events: Iterable[SagaEvent]) -> str:
    """The first refusal (its error code), else the first action left unknown."""
    for e in events:
        if e.role is not StepRole.ACTION:
            continue
        if e.kind is EventKind.ATTEMPT and e.outcome is Outcome.REJECTED:
            return e.error or e.result or f"{e.step} refused"
        if e.kind is EventKind.RETRIES_EXHAUSTED:
            return f"{e.step} unknown"
    return "other"


def run_violations(
    plan: Sequence[PlannedOrder],
    states: Mapping[str, SagaState],
    money: tuple[Mapping[str, int], Mapping[str, int]],
    stock: tuple[Stock, Stock],
) -> list[str]:
    """What this run's books say against its confirmed orders (module docstring)."""
    confirmed = [o for o in plan if states[o.saga_id].status == SagaStatus.COMPLETED]
    paid = sum(o.total for o in confirmed)
    before, after = money
    found = []
    if after["total"] != before["total"]:
        found.append(f"money: total {before['total']} before, {after['total']} after")
    for group, sign in (("merchants", 1), ("customers", -1)):
        if after[group] - before[group] != sign * paid:
            found.append(
                f"money: {group} moved {after[group] - before[group]}, confirmed orders paid {paid}"
            )
    bought: Counter[str] = Counter()
    for order in confirmed:
        bought.update(dict(order.lines))
    for sku in sorted(set(stock[0]) | set(stock[1])):
        was, now = stock[0].get(sku, {}), stock[1].get(sku, {})
        sold = now.get("sold", 0) - was.get("sold", 0)
        if sold != bought[sku]:
            found.append(f"stock {sku!r}: {sold} sold, confirmed orders bought {bought[sku]}")
        if now.get("reserved", 0) != was.get("reserved", 0):
            found.append(f"stock {sku!r}: {now.get('reserved', 0)} still reserved")
    return found


def summarise(
    plan: Sequence[PlannedOrder], states: Mapping[str, SagaState], **found: Any
) -> dict[str, Any]:
    """The run as one JSON-able dict; `ok` is the exit status's verdict."""
    statuses = Counter(states[o.saga_id].status for o in plan)
    outcomes = {label: statuses.get(status, 0) for status, label in OUTCOMES.items()}
    cancelled = Counter(
        why_cancelled(states[o.saga_id].history)
        for o in plan
        if states[o.saga_id].status == SagaStatus.COMPENSATED
    )
    settlements = Settlements()
    for order in plan:
        settlements.add(states[order.saga_id].history)
    unsettled = sum(n for s, n in statuses.items() if s not in TERMINAL) + found["left_over"]
    account_audit = found["account_audit"]
    violations = found["order_violations"] + found["run_violations"]
    return {
        "saga": "order",
        "orders": len(plan),
        **found["options"],
        "resumed": found["resumed"],
        "outcomes": outcomes,
        "cancelled_because": dict(sorted(cancelled.items())),
        "faults_injected": found["faults"],
        "settlements": settlements.as_dict(),
        "stock_before": found["stock"][0],
        "stock_after": found["stock"][1],
        "money_before": found["money"][0],
        "money_after": found["money"][1],
        "account_audit": {"ok": account_audit["ok"], "violations": account_audit["violations"]},
        "order_audit": {"ok": not violations, "violations": violations},
        "unsettled": unsettled,
        "ok": account_audit["ok"] and not violations and unsettled == 0,
    }


def _audit_lines(name: str, audit: Mapping[str, Any]) -> list[str]:
    if audit["ok"]:
        return [f"{name}: ok"]
    found = audit["violations"]
    return [f"{name}: {len(found)} violation(s)", *(f"  {v}" for v in found)]


def print_report(result: Mapping[str, Any]) -> None:
    out = Console()
    summary = Table(
        title=f"{result['orders']} orders, faults {result['fault_rate']:.0%} "
        f"({result['fault_mode']}) on the payment and the inventory, retries {result['retries']}"
    )
    summary.add_column("")
    summary.add_column("value", justify="right")
    for label, n in result["outcomes"].items():
        summary.add_row(label, str(n))
    for reason, n in result["cancelled_because"].items():
        summary.add_row(f"  cancelled: {reason}", str(n))
    for where, points in result["faults_injected"].items():
        summary.add_row(
            f"faults injected on {where}",
            f"{points['before']} before, {points['after']} after applying",
        )
    for key, label in SETTLEMENT_LABELS.items():
        summary.add_row(label, str(result["settlements"][key]))
    if result["resumed"]:
        summary.add_row("resumed from a previous run", str(sum(result["resumed"].values())))
    out.print(summary)
    stock = Table(title="stock: available / reserved / sold of opened")
    for column in ("sku", "before", "after"):
        stock.add_column(column, justify="left" if column == "sku" else "right")
    shown = "{available} / {reserved} / {sold} of {opened}"
    for sku, after in result["stock_after"].items():
        before = result["stock_before"].get(sku)
        stock.add_row(sku, shown.format(**before) if before else "-", shown.format(**after))
    out.print(stock)
    money = Table(title="money (in units)")
    for column in ("", "before", "after"):
        money.add_column(column, justify="right")
    for group in ("customers", "merchants", "total"):
        money.add_row(
            group,
            format_minor(result["money_before"][group]),
            format_minor(result["money_after"][group]),
        )
    out.print(money)
    lines = _audit_lines("account audit", result["account_audit"])
    lines += _audit_lines("order audit", result["order_audit"])
    lines.append(f"unsettled sagas: {result['unsettled']}")
    lines.append("result: " + ("ok" if result["ok"] else "VIOLATIONS (exit status 1)"))
    for line in lines:
        out.print(line, soft_wrap=True, markup=False, highlight=False)
