"""The python-cqrs comparison scenario runs against a real account service and reports sane figures.

Needs the `bench` extra (python-cqrs, SQLAlchemy, aiosqlite). No timing is asserted."""

from __future__ import annotations

import math

import pytest

from repository_after.bench.cqrs_saga import cqrs_transfers
from repository_after.bench.measure import LoadFigures

pytestmark = pytest.mark.e2e


def test_cqrs_transfers_runs_every_saga_to_an_end_and_reports_figures() -> None:
    n = 30
    figures = cqrs_transfers(n=n, concurrency=4, seed=1)

    for key in vars(LoadFigures(0, 0, 0, 0, 0)):
        assert math.isfinite(figures[key]), key
        assert figures[key] > 0, key
    assert figures["p50_ms"] <= figures["p99_ms"]
    assert figures["completed"] + figures["compensated"] == n
    assert figures["compensated"] > 0  # 30 % injected credit faults: some debits were undone
