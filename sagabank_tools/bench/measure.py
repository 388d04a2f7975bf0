"""Measuring helpers: latency percentiles, process CPU time and resident memory (Linux /proc),
medians and ratios."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mib(pid: int | None = None) -> float:
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class LoadFigures:
    per_second: float
    p50_ms: float
    p99_ms: float
    client_cpu_ms: float  # per transfer
    server_cpu_ms: float  # per transfer

    @staticmethod
    def of(
        latencies: list[float], wall: float, client_cpu: float, server_cpu: float
    ) -> LoadFigures:
        n = len(latencies)
        return LoadFigures(
            per_second=n / wall,
            p50_ms=percentile(latencies, 0.5) * 1000,
            p99_ms=percentile(latencies, 0.99) * 1000,
            client_cpu_ms=client_cpu / n * 1000,
            server_cpu_ms=server_cpu / n * 1000,
        )


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


#: (ratio name, sagabank's scenario, the other system's scenario)
RatioKey = tuple[str, str, str]


def ratios_of(results: dict[str, Any], keys: Iterable[RatioKey]) -> dict[str, float]:
    """Each ratio of throughputs (`per_second`) between the two scenarios' medians."""
    return {name: results[a]["per_second"] / results[b]["per_second"] for name, a, b in keys}


def paired_ratios_of(
    each: dict[str, list[dict[str, float]]], keys: Iterable[RatioKey]
) -> dict[str, list[float]]:
    """The same ratios within each repetition, whose systems ran minutes apart in one spell of
    the machine: their spread shows how far the ratio of medians can be trusted."""
    return {
        name: [x["per_second"] / y["per_second"] for x, y in zip(each[a], each[b], strict=True)]
        for name, a, b in keys
    }
