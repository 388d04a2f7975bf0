"""The python-cqrs comparison scenario runs against a real account service and reports sane figures.

Needs the `bench` extra (python-cqrs, SQLAlchemy, aiosqlite). No timing is asserted."""

from __future__ import annotations

import math

import pytest

from sagabank_tools.bench.cqrs_saga import cqrs_transfers
from sagabank_tools.bench.measure import LoadFigures

pytestmark = pytest.mark.e2e


def test_cqrs_transfers_runs_every_saga_to_an_end_and_reports_figures() -> None:
    n = 30
    figures = cqrs_transfers(n=n, concurrency=4, seed=1)

    for key in vars(LoadFigures(0, 0, 0, 0, 0)):
        assert math.isfinite(figures[key]), key
        assert figures[key] > 0, key
    assert figures["p50_ms"] <= figures["p99_ms"]
    assert figures["completed"] + figures["compensated"] + figures["rejected"] == n
    assert figures["compensated"] > 0  # 30 % injected credit faults: some debits were undone


def test_a_refused_debit_ends_the_python_cqrs_saga_rejected_not_the_bench() -> None:
    """Amounts go up to 3,000 and each account opens with 2,000: some debits are refused (409,
    insufficient funds). That is an outcome to count, as sagabank counts its rejected transfers;
    it once aborted a whole `sagabank bench` run."""
    n = 40
    figures = cqrs_transfers(n=n, concurrency=4, seed=2, balance=2_000)

    assert figures["rejected"] > 0
    assert figures["completed"] > 0
    assert figures["completed"] + figures["compensated"] + figures["rejected"] == n
