"""The library bench (`python -m sagabank_tools.bench.library`) on a tiny load: both engines run
every order of the plan to the expected end on the same steps, and the figures are sane.

Needs the `bench` extra (python-cqrs, SQLAlchemy, aiosqlite). No timing is asserted."""

from __future__ import annotations

import math

import pytest

from sagabank_tools.bench.library import compare

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("steps", ["noop", "sqlite"])
def test_both_engines_run_the_same_order_plan_and_the_report_holds_a_ratio(steps: str) -> None:
    n = 20
    report = compare(n=n, concurrency=4, repetitions=1, steps=steps)

    for system in ("sagabank", "python-cqrs"):
        m = report["medians"][system]
        assert (m["completed"], m["compensated"]) == (18, 2)  # every 10th: no address
        for key in ("per_second", "p50_ms", "p99_ms", "cpu_ms_per_saga", "log_commits_per_saga"):
            assert math.isfinite(m[key]), (system, key)
            assert m[key] > 0, (system, key)
        assert m["p50_ms"] <= m["p99_ms"]
    # sagabank: a create and an append per call at most (3 calls, 5 when compensating)
    assert 1 < report["medians"]["sagabank"]["log_writes_per_saga"] <= 6
    assert report["ratio"] == pytest.approx(
        report["medians"]["sagabank"]["per_second"] / report["medians"]["python-cqrs"]["per_second"]
    )
    assert len(report["ratio_within_each_repetition"]) == 1
