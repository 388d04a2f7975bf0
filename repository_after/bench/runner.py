"""`sagabank bench`: run every scenario side by side, repeat, print medians and ratios, save JSON.

    sagabank bench [--repetitions 3] [--transfers 2000] [--smoke] [--output bench/report.json]

A fresh server per repetition; the naive `repository_before` runs under the same load in the same
invocation, so ratios compare like with like on whatever machine runs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from repository_after.bench import scenarios
from repository_after.bench.measure import median_of

console = Console()


def _memory_in_subprocess(first: int, second: int) -> dict[str, float]:
    code = (
        "import json; from repository_after.bench.scenarios import memory; "
        f"print(json.dumps(memory(first={first}, second={second})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=3600
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_all(
    *, repetitions: int, transfers: int, noop: int, recover_n: int, memory_counts: tuple[int, int]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for impl in ("after", "before"):
        for concurrency in (1, 32):
            key = f"http_{impl}_c{concurrency}"
            n = transfers if concurrency > 1 else max(transfers // 4, 50)
            runs = []
            for rep in range(repetitions):
                console.print(f"[dim]{key}: repetition {rep + 1}/{repetitions}, {n} transfers")
                runs.append(
                    scenarios.http_transfers(impl=impl, n=n, concurrency=concurrency, seed=rep)
                )
            results[key] = median_of(runs)
    console.print("[dim]no-op sagas, recovery, memory")
    results["noop_sagas"] = median_of([scenarios.noop_sagas(n=noop) for _ in range(repetitions)])
    results["recovery"] = median_of([scenarios.recovery(n=recover_n) for _ in range(repetitions)])
    results["memory"] = _memory_in_subprocess(*memory_counts)
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    return {
        f"after/before transfers/s at c={c}": results[f"http_after_c{c}"]["per_second"]
        / results[f"http_before_c{c}"]["per_second"]
        for c in (1, 32)
    }


def print_table(results: dict[str, Any], command: str) -> None:
    table = Table(title=f"sagabank bench (medians) — {command}")
    for column in (
        "scenario",
        "transfers/s",
        "p50 ms",
        "p99 ms",
        "client CPU ms/transfer",
        "server CPU ms/transfer",
    ):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    for key, figures in results.items():
        if key.startswith("http_"):
            table.add_row(
                key.removeprefix("http_"),
                f"{figures['per_second']:.0f}",
                f"{figures['p50_ms']:.1f}",
                f"{figures['p99_ms']:.1f}",
                f"{figures['client_cpu_ms']:.2f}",
                f"{figures['server_cpu_ms']:.2f}",
            )
    console.print(table)
    console.print(
        f"no-op saga overhead: {results['noop_sagas']['sagas_per_second']:.0f} sagas/s "
        "(durable SQLite log, 32 in flight)"
    )
    rec = results["recovery"]
    console.print(f"recovery: {rec['recovered']:.0f} interrupted sagas in {rec['seconds']:.2f} s")
    mem = results["memory"]
    console.print(
        f"memory: {mem['rss_first_mib']:.1f} MiB → {mem['rss_second_mib']:.1f} MiB "
        f"({mem['growth_pct']:+.1f} %)"
    )
    for name, value in ratios(results).items():
        console.print(f"{name}: {value:.2f}x")
    console.print("python-cqrs comparison: not measured yet (issue 7 leaves it open)")


def bench(
    repetitions: Annotated[int, typer.Option(min=1)] = 3,
    transfers: Annotated[int, typer.Option(min=10, help="transfers per run at c=32")] = 2000,
    smoke: Annotated[
        bool, typer.Option(help="one tiny repetition, to keep the bench working")
    ] = False,
    output: Annotated[Path, typer.Option(help="JSON report")] = Path("bench/report.json"),
) -> None:
    """Benchmark sagabank against the naive design, side by side; print medians and ratios."""
    if smoke:
        repetitions, transfers = 1, 60
    counts = (300, 1_000) if smoke else (10_000, 200_000)
    started = time.perf_counter()
    results = run_all(
        repetitions=repetitions,
        transfers=transfers,
        noop=100 if smoke else 5_000,
        recover_n=100 if smoke else 10_000,
        memory_counts=counts,
    )
    command = "sagabank bench " + " ".join(sys.argv[2:])
    print_table(results, command.strip())
    report = {
        "command": command.strip(),
        "repetitions": repetitions,
        "results": results,
        "ratios": ratios(results),
        "seconds": time.perf_counter() - started,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    console.print(f"report: {output}")
