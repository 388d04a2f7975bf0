"""The modes scenario of `sagabank bench`: orchestration beside choreography, its runs, table,
ratios (issue 24, item 6).

In each repetition, for the transfer and the order saga, at 1 and 32 in flight, both modes run
the same seeded plan (the repetition's number) on fresh processes (`modes.mode_run`), one right
after the other; which mode goes first alternates from one repetition to the next, so a slow
spell of the machine does not always hit the same one. Figures are kept under
`modes_<saga>_<mode>_c<c>` beside the other scenarios' (medians, and each repetition's); the
ratios orchestration / choreography are of sagas/s, from the medians and within each repetition.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from sagabank_tools.bench.measure import RatioKey, paired_ratios_of, ratios_of
from sagabank_tools.bench.modes import MODES, SAGAS, mode_run

CONCURRENCIES = (1, 32)


def mode_key(saga: str, mode: str, concurrency: int) -> str:
    return f"modes_{saga}_{mode}_c{concurrency}"


def mode_count(sagas: int, concurrency: int) -> int:
    """Sagas per run: `sagas` at 32 in flight, a tenth (at least 10) one at a time (a
    choreographed saga takes most of a second alone: three to seven relay hops)."""
    return sagas if concurrency > 1 else max(sagas // 10, 10)


def run_repetition(
    runs: dict[str, list[dict[str, float]]], *, rep: int, sagas: int, console: Console
) -> None:
    """Both modes once per saga type and concurrency, their figures appended to `runs`."""
    order = MODES if rep % 2 == 0 else tuple(reversed(MODES))
    for saga in SAGAS:
        for concurrency in CONCURRENCIES:
            n = mode_count(sagas, concurrency)
            for mode in order:
                key = mode_key(saga, mode, concurrency)
                console.print(f"[dim]repetition {rep + 1}: {key}, {n} sagas")
                figures = mode_run(saga=saga, mode=mode, n=n, concurrency=concurrency, seed=rep)
                runs.setdefault(key, []).append(figures)


def _ratio_keys() -> list[RatioKey]:
    return [
        (
            f"{saga} orchestration/choreography at c={c}",
            mode_key(saga, "orchestration", c),
            mode_key(saga, "choreography", c),
        )
        for saga in SAGAS
        for c in CONCURRENCIES
    ]


def mode_ratios(results: dict[str, Any]) -> dict[str, float]:
    return ratios_of(results, _ratio_keys())


def paired_mode_ratios(each: dict[str, list[dict[str, float]]]) -> dict[str, list[float]]:
    return paired_ratios_of(each, _ratio_keys())


def print_modes(
    results: dict[str, Any], each: dict[str, list[dict[str, float]]], console: Console
) -> None:
    table = Table(title="orchestration beside choreography (medians, per saga)")
    columns = (
        "saga",
        "mode",
        "c",
        "sagas/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms",
        "messages",
        "log rows",
        "outbox",
        "inbox",
        "turns",
        "writes",
        "books",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("saga", "mode", "books") else "right")
    for saga in SAGAS:
        for mode in MODES:
            for c in CONCURRENCIES:
                f = results[mode_key(saga, mode, c)]
                violations = int(f["audit_violations"])
                table.add_row(
                    saga,
                    mode,
                    str(c),
                    f"{f['per_second']:.1f}",
                    f"{f['p50_ms']:.1f}",
                    f"{f['p99_ms']:.1f}",
                    f"{f['server_cpu_ms']:.2f}",
                    f"{f['messages_per_saga']:.1f}",
                    f"{f['saga_log_rows_per_saga']:.1f}",
                    f"{f['outbox_rows_per_saga']:.1f}",
                    f"{f['inbox_rows_per_saga']:.1f}",
                    f"{f['turn_rows_per_saga']:.1f}",
                    f"{f['writes_per_saga']:.1f}",
                    "clean" if violations == 0 else f"[red]{violations} violations",
                )
    console.print(table)
    console.print(
        "One `serve --role all` process per run, no faults; choreography over RabbitMQ "
        "(SAGABANK_BROKER_URL, a topology prefix per run, deleted after it). messages: broker "
        "messages published; writes: saga-log + outbox + inbox + turn rows."
    )
    paired = paired_mode_ratios(each)
    for name, value in mode_ratios(results).items():
        within = ", ".join(f"{r:.2f}" for r in paired[name])
        console.print(f"{name}: {value:.2f}x (within each repetition: {within})")


def report(results: dict[str, Any], each: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The JSON report's mode ratios (the figures are under `results` and `each_repetition`)."""
    return {
        "mode_ratios": mode_ratios(results),
        "mode_ratios_within_each_repetition": paired_mode_ratios(each),
    }
