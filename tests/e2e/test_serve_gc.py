"""`sagabank serve` tunes the garbage collector before it serves (`entrypoints/gc_tuning.py`),
with the threshold from `SAGABANK_GC_THRESHOLD`, and leaves CPython's settings alone at 0."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Launcher

TUNED = "gen0 collected every"


def test_serve_tunes_the_collector_from_the_setting(launch: Launcher, tmp_path: Path) -> None:
    tuned = launch(name="tuned", log_level="INFO", gc_threshold=12_345)
    plain = launch(name="plain", log_level="INFO", gc_threshold=0)
    for service in (tuned, plain):
        assert httpx.get(f"{service.url}/health", timeout=10).status_code == 200
    tuned.stop()
    plain.stop()
    assert f"{TUNED} 12345 allocations" in (tmp_path / "tuned.log").read_text()
    assert TUNED not in (tmp_path / "plain.log").read_text()
