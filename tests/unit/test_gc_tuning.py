"""`tune_gc` (what `sagabank serve` does before serving): start-up's objects are frozen out of
the collector's sight and gen0 is collected every `threshold` allocations; 0 changes nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from repository_after.config import Settings
from repository_after.entrypoints.gc_tuning import tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_freezes_start_up_and_raises_the_gen0_threshold(restored_gc: None) -> None:
    _, older, oldest = gc.get_threshold()
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, older, oldest)
    assert gc.get_freeze_count() > 1_000  # at least the imported modules' objects


def test_zero_keeps_cpythons_settings(restored_gc: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_threshold_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().gc_threshold == 20_000
    monkeypatch.setenv("SAGABANK_GC_THRESHOLD", "0")
    assert Settings().gc_threshold == 0
    monkeypatch.setenv("SAGABANK_GC_THRESHOLD", "-1")
    with pytest.raises(ValueError, match="gc_threshold"):
        Settings()
