"""`sagabank bench`: run every scenario side by side, repeat, print medians and ratios, save JSON.

    sagabank bench [--repetitions 3] [--transfers 2000] [--orders 500] [--mode-sagas 200]
                   [--only-modes] [--smoke] [--output bench/report.json]

A fresh server per repetition; the naive `repository_before` and python-cqrs's saga engine (the
`bench` extra) run under the same load in the same invocation, so ratios compare like with like
on whatever machine runs them. The order saga runs on sagabank and on python-cqrs in the same
repetitions (`order_report`), and orchestration beside choreography over RabbitMQ, for both sagas
(`modes_report`; `--only-modes` runs that alone). The JSON keeps each repetition's figures
beside the medians.
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

from sagabank_tools.bench import modes_report, order_report, scenarios
from sagabank_tools.bench.measure import median_of, paired_ratios_of, ratios_of

console = Console()


def _memory_in_subprocess(first: int, second: int) -> dict[str, float]:
    code = (
        "import json; from sagabank_tools.bench.scenarios import memory; "
        f"print(json.dumps(memory(first={first}, second={second})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=3600
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


#: The end-to-end systems, in table order: (key, label).
SYSTEMS = (
    ("after", "sagabank 2 svc"),
    ("after_all", "sagabank 1 proc"),
    ("before", "naive"),
    ("cqrs", "python-cqrs"),
)
#: The issue's targets, checked against the medians (figures from one run on this machine):
#: (name, bound, whether the measure must stay at or below the bound rather than reach it).
TARGETS = (
    ("after/before at c=32", 2.5, False),
    ("after/cqrs at c=32", 25.0, False),
    ("no-op sagas/s", 5_000, False),
    ("p99 ms at c=32 (at most)", 25.0, True),
    ("recovery of 10,000 sagas, s (at most)", 10.0, True),
    ("RSS growth 10k -> 200k, % (at most)", 10.0, True),
)
#: The floors of issue 19 (libraries on every path: httpx, FastAPI routes only): ratios at c=32
#: that the library stack must keep, checked against the medians like the targets.
FLOORS = (
    ("after/before at c=32", 4.0),
    ("after/cqrs at c=32", 20.0),
)


def _one_run(system: str, n: int, concurrency: int, seed: int) -> dict[str, float]:
    if system == "cqrs":
        from sagabank_tools.bench.cqrs_saga import cqrs_transfers

        return cqrs_transfers(n=n, concurrency=concurrency, seed=seed)
    return scenarios.http_transfers(impl=system, n=n, concurrency=concurrency, seed=seed)


def run_all(
    *,
    repetitions: int,
    transfers: int,
    orders: int,
    mode_sagas: int,
    noop: int,
    recover_n: int,
    memory_counts: tuple[int, int],
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """(medians, each repetition's figures by scenario). Repetition-major: each repetition runs
    every system once, so a slow spell on the machine hits all of them alike instead of one
    system's whole series."""
    runs: dict[str, list[dict[str, float]]] = {}
    for rep in range(repetitions):
        for system, _ in SYSTEMS:
            for concurrency in (1, 32):
                key = f"http_{system}_c{concurrency}"
                n = transfers if concurrency > 1 else max(transfers // 4, 50)
                console.print(f"[dim]repetition {rep + 1}/{repetitions}: {key}, {n} transfers")
                runs.setdefault(key, []).append(_one_run(system, n, concurrency, seed=rep))
        order_report.run_repetition(runs, rep=rep, orders=orders, console=console)
        modes_report.run_repetition(runs, rep=rep, sagas=mode_sagas, console=console)
    console.print("[dim]no-op sagas, recovery, memory")
    runs["noop_sagas"] = [scenarios.noop_sagas(n=noop) for _ in range(repetitions)]
    runs["recovery"] = [scenarios.recovery(n=recover_n) for _ in range(repetitions)]
    results: dict[str, Any] = {key: median_of(figures) for key, figures in runs.items()}
    results["memory"] = _memory_in_subprocess(*memory_counts)
    return results, runs


def _ratio_keys() -> list[tuple[str, str, str]]:
    """(ratio name, sagabank's scenario, the other system's scenario) for each ratio."""
    return [
        (f"after/{other} at c={c}", f"http_after_c{c}", f"http_{other}_c{c}")
        for other in ("before", "cqrs")
        for c in (1, 32)
    ]


def ratios(results: dict[str, Any]) -> dict[str, float]:
    return ratios_of(results, _ratio_keys())


def paired_ratios(each: dict[str, list[dict[str, float]]]) -> dict[str, list[float]]:
    return paired_ratios_of(each, _ratio_keys())


def floors(results: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(ratio, measured, floor, met) for each of issue 19's floors."""
    r = ratios(results)
    return [(name, r[name], bound, r[name] >= bound) for name, bound in FLOORS]


def targets(results: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(target, measured, bound, met) for each of the issue's targets."""
    r = ratios(results)
    measured = {
        "after/before at c=32": r["after/before at c=32"],
        "after/cqrs at c=32": r["after/cqrs at c=32"],
        "no-op sagas/s": results["noop_sagas"]["sagas_per_second"],
        "p99 ms at c=32 (at most)": results["http_after_c32"]["p99_ms"],
        "recovery of 10,000 sagas, s (at most)": results["recovery"]["seconds"],
        "RSS growth 10k -> 200k, % (at most)": results["memory"]["growth_pct"],
    }
    rows = []
    for name, bound, at_most in TARGETS:
        value = measured[name]
        met = value <= bound if at_most else value >= bound
        rows.append((name, value, bound, met))
    return rows


def print_table(
    results: dict[str, Any], each: dict[str, list[dict[str, float]]], command: str
) -> None:
    table = Table(title=f"sagabank bench (medians) — {command}")
    columns = ("system", "c", "transfers/s", "p50 ms", "p99 ms", "client CPU ms", "server CPU ms")
    for column in columns:
        table.add_column(column, justify="left" if column == "system" else "right")
    for system, label in SYSTEMS:
        for c in (1, 32):
            f = results[f"http_{system}_c{c}"]
            table.add_row(
                label,
                str(c),
                f"{f['per_second']:.0f}",
                f"{f['p50_ms']:.1f}",
                f"{f['p99_ms']:.1f}",
                f"{f['client_cpu_ms']:.2f}",
                f"{f['server_cpu_ms']:.2f}",
            )
    console.print(table)
    console.print(
        "sagabank 2 svc: account service + orchestrator processes (as deployed); 1 proc: "
        "--role all. CPU is per transfer; python-cqrs's engine runs in the client process."
    )
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
    paired = paired_ratios(each)
    for name, value in ratios(results).items():
        within = ", ".join(f"{r:.2f}" for r in paired[name])
        console.print(f"{name}: {value:.2f}x (within each repetition: {within})")
    for name, value, bound, met in targets(results):
        mark = "[green]met" if met else "[red]not met"
        console.print(f"target {name}: {value:,.1f} against {bound:,.1f} — {mark}")
    for name, value, bound, met in floors(results):
        mark = "[green]met" if met else "[red]not met"
        console.print(f"floor (issue 19) {name}: {value:.2f}x against {bound:.1f}x — {mark}")
    order_report.print_orders(results, each, console)
    modes_report.print_modes(results, each, console)


def bench(
    repetitions: Annotated[
        int, typer.Option(min=1, help="runs of every scenario; the figures are their medians")
    ] = 3,
    transfers: Annotated[int, typer.Option(min=10, help="transfers per run at c=32")] = 2000,
    orders: Annotated[
        int, typer.Option(min=10, max=3000, help="order sagas per run at c=32")
    ] = 500,
    mode_sagas: Annotated[
        int,
        typer.Option(
            min=10, max=3000, help="sagas per run at c=32 of each mode, saga type (modes scenario)"
        ),
    ] = 200,
    only_modes: Annotated[
        bool, typer.Option(help="run only orchestration beside choreography (needs RabbitMQ)")
    ] = False,
    smoke: Annotated[
        bool, typer.Option(help="one tiny repetition, to keep the bench working")
    ] = False,
    output: Annotated[Path, typer.Option(help="JSON report")] = Path("bench/report.json"),
) -> None:
    """Benchmark sagabank against the naive design and python-cqrs, side by side (transfers, and
    the order saga against python-cqrs); print medians and ratios."""
    if smoke:
        repetitions, transfers, orders, mode_sagas = 1, 60, 20, 10
    if only_modes:
        _only_modes(repetitions=repetitions, sagas=mode_sagas, output=output)
        return
    counts = (300, 1_000) if smoke else (10_000, 200_000)
    started = time.perf_counter()
    results, each = run_all(
        repetitions=repetitions,
        transfers=transfers,
        orders=orders,
        mode_sagas=mode_sagas,
        noop=100 if smoke else 5_000,
        recover_n=100 if smoke else 10_000,
        memory_counts=counts,
    )
    command = "sagabank bench " + " ".join(sys.argv[2:])
    print_table(results, each, command.strip())
    report = {
        "command": command.strip(),
        "repetitions": repetitions,
        "results": results,
        # The spread behind each median: single runs move by up to 50 % with the machine's speed.
        "each_repetition": each,
        "ratios": ratios(results),
        "ratios_within_each_repetition": paired_ratios(each),
        **order_report.report(results, each),
        **modes_report.report(results, each),
        "targets": [
            {"target": name, "measured": value, "bound": bound, "met": met}
            for name, value, bound, met in targets(results)
        ],
        "floors": [
            {"ratio": name, "measured": value, "floor": bound, "met": met}
            for name, value, bound, met in floors(results)
        ],
        "seconds": time.perf_counter() - started,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    console.print(f"report: {output}")


def _only_modes(*, repetitions: int, sagas: int, output: Path) -> None:
    """`--only-modes`: the modes scenario alone, its table and its JSON report."""
    started = time.perf_counter()
    each: dict[str, list[dict[str, float]]] = {}
    for rep in range(repetitions):
        modes_report.run_repetition(each, rep=rep, sagas=sagas, console=console)
    results: dict[str, Any] = {key: median_of(figures) for key, figures in each.items()}
    command = ("sagabank bench " + " ".join(sys.argv[2:])).strip()
    console.print(f"[bold]{command}")
    modes_report.print_modes(results, each, console)
    report = {
        "command": command,
        "repetitions": repetitions,
        "results": results,
        "each_repetition": each,
        **modes_report.report(results, each),
        "seconds": time.perf_counter() - started,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    console.print(f"report: {output}")
