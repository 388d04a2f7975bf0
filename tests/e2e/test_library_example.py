"""The worked example runs as documented (`python -m repository_after.library.examples.order`):
one order shipped, two compensated, and running it again in the same directory rejoins the
same sagas (same ids) and applies nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run_example(directory: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "repository_after.library.examples.order", "--dir", str(directory)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_the_example_prints_each_order_and_every_effect_once(tmp_path: Path) -> None:
    first = run_example(tmp_path)

    assert "order-1: completed" in first
    assert "order-2: compensated" in first
    assert "order-3: compensated" in first
    effects = first.split("effects, in order:\n")[1].splitlines()
    assert [line.split()[:2] for line in effects] == [
        ["reserve", "order-1:reserve_inventory"],
        ["charge", "order-1:process_payment"],
        ["ship", "order-1:ship_order"],
        ["reserve", "order-2:reserve_inventory"],
        ["charge", "order-2:process_payment"],
        ["refund", "order-2:process_payment"],
        ["release", "order-2:reserve_inventory"],
        ["reserve", "order-3:reserve_inventory"],
        ["release", "order-3:reserve_inventory"],
    ]
    assert run_example(tmp_path) == first  # rejoined: the same sagas, nothing applied again
