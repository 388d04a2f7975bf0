"""What `sagabank serve` does to the interpreter before serving (`entrypoints/runtime_tuning.py`):
start-up's objects are frozen out of the collector's sight and gen0 is collected every
`threshold` allocations; the GIL's switch interval is shortened; 0 changes nothing, and the
benchmark's `tuned_runtime` puts CPython's settings back."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from repository_after.config import Settings
from repository_after.entrypoints.runtime_tuning import (
    tune_gc,
    tune_switch_interval,
    tuned_runtime,
)


@pytest.fixture
def restored_runtime() -> Iterator[None]:
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    sys.setswitchinterval(interval)


def test_freezes_start_up_and_raises_the_gen0_threshold(restored_runtime: None) -> None:
    _, older, oldest = gc.get_threshold()
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, older, oldest)
    assert gc.get_freeze_count() > 1_000  # at least the imported modules' objects


def test_zero_keeps_cpythons_settings(restored_runtime: None) -> None:
    gc.unfreeze()
    before, interval = gc.get_threshold(), sys.getswitchinterval()
    tune_gc(0)
    tune_switch_interval(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == interval


def test_shortens_the_switch_interval(restored_runtime: None) -> None:
    tune_switch_interval(250)
    assert sys.getswitchinterval() == pytest.approx(0.000_25)


def test_tuned_runtime_puts_cpythons_settings_back(restored_runtime: None) -> None:
    gc.unfreeze()
    before, interval = gc.get_threshold(), sys.getswitchinterval()
    with tuned_runtime(threshold=23_456, switch_us=300):
        assert gc.get_threshold()[0] == 23_456
        assert sys.getswitchinterval() == pytest.approx(0.000_3)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == interval


@pytest.mark.parametrize(
    ("variable", "field", "default"),
    [("GC_THRESHOLD", "gc_threshold", 20_000), ("SWITCH_INTERVAL_US", "switch_interval_us", 100)],
)
def test_both_are_settings(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, default: int
) -> None:
    assert getattr(Settings(), field) == default
    monkeypatch.setenv(f"SAGABANK_{variable}", "0")
    assert getattr(Settings(), field) == 0
    monkeypatch.setenv(f"SAGABANK_{variable}", "-1")
    with pytest.raises(ValueError, match=field):
        Settings()
