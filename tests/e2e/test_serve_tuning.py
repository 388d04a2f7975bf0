"""`sagabank serve` tunes the interpreter before it serves (`entrypoints/runtime_tuning.py`): the
garbage collector from `SAGABANK_GC_THRESHOLD` and the GIL's switch interval from
`SAGABANK_SWITCH_INTERVAL_US`, and leaves CPython's settings alone at 0."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Launcher

GC = "gen0 collected every"
SWITCH = "GIL switch interval:"


def test_serve_tunes_the_interpreter_from_the_settings(launch: Launcher, tmp_path: Path) -> None:
    tuned = launch(name="tuned", log_level="INFO", gc_threshold=12_345, switch_interval_us=321)
    plain = launch(name="plain", log_level="INFO", gc_threshold=0, switch_interval_us=0)
    for service in (tuned, plain):
        assert httpx.get(f"{service.url}/health", timeout=10).status_code == 200
    tuned.stop()
    plain.stop()
    tuned_log = (tmp_path / "tuned.log").read_text()
    assert f"{GC} 12345 allocations" in tuned_log
    assert f"{SWITCH} 321 microseconds" in tuned_log
    plain_log = (tmp_path / "plain.log").read_text()
    assert GC not in plain_log
    assert SWITCH not in plain_log
