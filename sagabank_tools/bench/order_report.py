"""The order scenario of `sagabank bench`: its runs in each repetition, its table, its ratios.

In each repetition, after the transfers, the order saga runs on sagabank (`orders`: one
`--role all` process) and on python-cqrs (`cqrs_order`), at 1 and 32 in flight, each run on
fresh processes with the same seeded plan (the repetition's number). Their figures are kept under
`orders_<system>_c<c>` beside the transfer scenarios' (medians, and each repetition's); the
ratios sagabank / python-cqrs are of orders/s, from the medians and within each repetition (two
systems a few minutes apart, in one spell of the machine), printed and in the JSON report.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from sagabank_tools.bench.measure import RatioKey, paired_ratios_of, ratios_of

#: The systems, in table order: (key, label).
ORDER_SYSTEMS = (("after_all", "sagabank 1 proc"), ("cqrs", "python-cqrs"))
CONCURRENCIES = (1, 32)


def order_key(system: str, concurrency: int) -> str:
    return f"orders_{system}_c{concurrency}"


def order_count(orders: int, concurrency: int) -> int:
    """Orders per run: `orders` at 32 in flight, a quarter (at least 10) one at a time."""
    return orders if concurrency > 1 else max(orders // 4, 10)


def run_orders(system: str, *, n: int, concurrency: int, seed: int) -> dict[str, float]:
    if system == "cqrs":
        from sagabank_tools.bench.cqrs_saga import require_cqrs

        require_cqrs()  # before importing python-cqrs, to say how to install it
        from sagabank_tools.bench.cqrs_order import cqrs_orders

        return cqrs_orders(n=n, concurrency=concurrency, seed=seed)
    from sagabank_tools.bench.orders import sagabank_orders

    return sagabank_orders(n=n, concurrency=concurrency, seed=seed)


def run_repetition(
    runs: dict[str, list[dict[str, float]]], *, rep: int, orders: int, console: Console
) -> None:
    """Every order system once, its figures appended to `runs`; seeded by the repetition."""
    for system, _ in ORDER_SYSTEMS:
        for concurrency in CONCURRENCIES:
            key, n = order_key(system, concurrency), order_count(orders, concurrency)
            console.print(f"[dim]repetition {rep + 1}: {key}, {n} orders")
            figures = run_orders(system, n=n, concurrency=concurrency, seed=rep)
            runs.setdefault(key, []).append(figures)


def _ratio_keys() -> list[RatioKey]:
    return [
        (f"orders sagabank/python-cqrs at c={c}", order_key("after_all", c), order_key("cqrs", c))
        for c in CONCURRENCIES
    ]


def order_ratios(results: dict[str, Any]) -> dict[str, float]:
    return ratios_of(results, _ratio_keys())


def paired_order_ratios(each: dict[str, list[dict[str, float]]]) -> dict[str, list[float]]:
    return paired_ratios_of(each, _ratio_keys())


def _audited(f: dict[str, float]) -> str:
    violations = int(f["audit_violations"])
    return "clean" if violations == 0 else f"[red]{violations} violations"


def print_orders(
    results: dict[str, Any], each: dict[str, list[dict[str, float]]], console: Console
) -> None:
    table = Table(title="order saga end to end (medians)")
    columns = (
        "system",
        "c",
        "orders/s",
        "p50 ms",
        "p99 ms",
        "client CPU ms",
        "server CPU ms",
        "log rows",
        "log commits",
        "completed",
        "compensated",
        "books",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("system", "books") else "right")
    for system, label in ORDER_SYSTEMS:
        for c in CONCURRENCIES:
            f = results[order_key(system, c)]
            commits = f.get("log_commits_per_saga")
            table.add_row(
                label,
                str(c),
                f"{f['per_second']:.1f}",
                f"{f['p50_ms']:.1f}",
                f"{f['p99_ms']:.1f}",
                f"{f['client_cpu_ms']:.2f}",
                f"{f['server_cpu_ms']:.2f}",
                f"{f['log_entries_per_saga']:.1f}",
                "group" if commits is None else f"{commits:.1f}",
                f"{f['completed']:.0f}",
                f"{f['compensated']:.0f}",
                _audited(f),
            )
    console.print(table)
    console.print(
        "Per order: CPU, log rows and log commits (sagabank's writes share group commits). "
        "python-cqrs's engine runs in the client process; sagabank's client is the load "
        "generator. Books: the order saga's invariants after each run (order_books.py)."
    )
    paired = paired_order_ratios(each)
    for name, value in order_ratios(results).items():
        within = ", ".join(f"{r:.2f}" for r in paired[name])
        console.print(f"{name}: {value:.2f}x (within each repetition: {within})")


def report(results: dict[str, Any], each: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The JSON report's order ratios (the figures are under `results` and `each_repetition`)."""
    return {
        "order_ratios": order_ratios(results),
        "order_ratios_within_each_repetition": paired_order_ratios(each),
    }
