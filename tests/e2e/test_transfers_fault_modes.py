"""100 transfers through the demo's orchestrator in every fault mode: money is conserved."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from repository_after.entrypoints.transfer_demo import DemoOptions, run_transfers
from repository_after.service_layer.faults import FaultMode
from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("mode", list(FaultMode))
@pytest.mark.parametrize("retries", [0, 2])
def test_hundred_transfers_conserve_money_and_settle(
    launch: Launcher, tmp_path: Path, mode: FaultMode, retries: int
) -> None:
    service = launch(credit_failure_rate=0.3, credit_failure_mode=mode.value, fault_seed=11)
    opts = DemoOptions(
        transfers=100,
        concurrency=8,
        fault_rate=0.3,
        fault_mode=mode,
        seed=5,
        retries=retries,
        max_amount=30_000,
    )
    result = asyncio.run(run_transfers(opts, service.url, tmp_path))
    assert result["audit_violations"] == []
    assert result["delta"] == 0
    assert result["unsettled"] == 0
    assert result["conserved"] is True
    outcomes = result["outcomes"]
    assert sum(outcomes.values()) == 100
    assert outcomes.get("failed_needs_attention", 0) == 0
    if mode is FaultMode.BEFORE and retries == 0:
        assert outcomes.get("compensated", 0) >= 15  # about 30 % of the credits fail
    if mode is FaultMode.AFTER:
        assert outcomes.get("compensated", 0) == 0  # every lost response was settled as landed
