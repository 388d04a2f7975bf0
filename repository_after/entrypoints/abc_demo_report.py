"""What `sagabank demo --saga abc` prints (`abc_demo`): per row of the failure table, the saga's
final status and, per service, the calls it received in order and whether its table kept the
saga's row; then, for each row that differs from the table, what the table expected."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from repository_after.entrypoints.demo_support import console
from repository_after.services.abc import SERVICES


def print_results(results: list[dict[str, Any]]) -> None:
    table = Table(title="A → B → C: each row's saga and the calls each service received")
    for column in ("fails", "saga ends", "service", "calls it received, in order", "row kept", ""):
        table.add_column(column)
    for result in results:
        verdict = "[green]as expected[/green]" if result["ok"] else "[red]DIFFERS[/red]"
        for index, name in enumerate(SERVICES):
            first = index == 0
            table.add_row(
                result["row"] if first else "",
                result["status"] if first else "",
                name,
                " → ".join(result["calls"][name]) or "-",
                "yes" if name in result["rows_left"] else "no",
                verdict if first else "",
                end_section=index == len(SERVICES) - 1,
            )
    console.print(table)
    for result in results:
        if not result["ok"]:
            console.print(
                f"[red]{result['row']}[/red]: expected {result['expected_status']}, "
                f"rows kept by {result['expected_rows_left'] or 'none'}, "
                f"calls {result['expected_calls']}",
                soft_wrap=True,
            )
