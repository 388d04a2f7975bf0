"""`sagabank bench --smoke` keeps working: every scenario runs and reports sane figures.

No timing is asserted (benchmarks print figures; they never pass or fail on speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rabbit import require_rabbitmq

pytestmark = pytest.mark.e2e


def test_bench_smoke_run_reports_every_scenario(tmp_path: Path) -> None:
    require_rabbitmq()  # the modes scenario runs choreography on the local broker
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "repository_after.entrypoints.cli",
            "bench",
            "--smoke",
            "--output",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    results = report["results"]
    systems = ("after", "after_all", "before", "cqrs")
    for key in (f"http_{system}_c{c}" for system in systems for c in (1, 32)):
        figures = results[key]
        assert figures["per_second"] > 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
        assert figures["server_cpu_ms"] > 0
    for system in ("after_all", "cqrs"):  # the order saga, 10 orders at c=1 and 20 at c=32
        for c, n in ((1, 10), (32, 20)):
            figures = results[f"orders_{system}_c{c}"]
            assert figures["per_second"] > 0
            assert 0 < figures["p50_ms"] <= figures["p99_ms"]
            assert figures["server_cpu_ms"] > 0
            assert figures["completed"] + figures["compensated"] == n
            assert figures["audit_violations"] == 0  # the books are clean
            assert figures["log_entries_per_saga"] > 0
    for saga in ("transfer", "order"):  # orchestration beside choreography, 10 sagas per run
        for mode in ("orchestration", "choreography"):
            for c in (1, 32):
                figures = results[f"modes_{saga}_{mode}_c{c}"]
                assert figures["completed"] == 10
                assert figures["audit_violations"] == 0
                assert (figures["messages_per_saga"] > 0) == (mode == "choreography")
    assert set(report["mode_ratios"]) == {
        f"{saga} orchestration/choreography at c={c}"
        for saga in ("transfer", "order")
        for c in (1, 32)
    }
    assert "orchestration beside choreography" in result.stdout
    assert results["noop_sagas"]["sagas_per_second"] > 0
    each = report["each_repetition"]  # one repetition in smoke mode: the median is that run
    assert set(each) == set(results) - {"memory"}
    assert all(len(runs) == 1 and runs[0] == results[key] for key, runs in each.items())
    assert results["recovery"]["recovered"] == 100
    assert results["memory"]["rss_second_mib"] > 0
    assert set(report["ratios"]) == {
        f"after/{other} at c={c}" for other in ("before", "cqrs") for c in (1, 32)
    }
    assert all(r > 0 for r in report["ratios"].values())
    paired = report["ratios_within_each_repetition"]  # one repetition: the same ratios
    assert paired == {name: [ratio] for name, ratio in report["ratios"].items()}
    assert set(report["order_ratios"]) == {f"orders sagabank/python-cqrs at c={c}" for c in (1, 32)}
    assert all(r > 0 for r in report["order_ratios"].values())
    assert report["order_ratios_within_each_repetition"] == {
        name: [ratio] for name, ratio in report["order_ratios"].items()
    }
    assert "order saga end to end" in result.stdout
    assert len(report["targets"]) == 6
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    assert "no-op saga overhead" in result.stdout
