"""The interpreter's settings for a serving process (`sagabank serve`): the garbage collector and
the GIL's switch interval. Both were found by profiling under load (docs/performance.md).

The garbage collector. Every transfer allocates thousands of short-lived containers (coroutines,
tuples, dicts). With CPython's default gen0 threshold (700 allocations) the cyclic collector runs
every few requests, and now and then a full collection walks every object the process holds,
imported code included. Those pauses made the latency's tail: at c=32, p99 fell from 58-83 ms to
40-50 ms with `tune_gc` (third round). `gc.freeze()` moves everything start-up made (modules,
classes, the app) out of the collector's sight for good, and a higher gen0 threshold collects
less often. Reference counting still frees almost every object at once; cycles are still
collected, only in larger sweeps.

The switch interval. Every durable write ends with a COMMIT on the database's writer thread
(`adapters/sqlite_db.py`), which needs the GIL twice: to start, and to hand the result back
once the fsync returns. The event loop's thread is busy under load and gives the GIL up only
when asked, after CPython's switch interval of 5 ms. Timed inside the orchestrator (fourth
round), a write spent 2.0-2.7 ms from its statements to its commit at 5 ms, and 1.2-1.7 ms at
100 µs. A shorter interval only matters while another thread waits for the GIL, so the loop
pays for it only when a commit is ready to go on.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from repository_after.config import DEFAULT_GC_THRESHOLD, DEFAULT_SWITCH_INTERVAL_US

logger = logging.getLogger(__name__)


def tune_gc(threshold: int) -> None:
    """Freeze what exists now and collect gen0 every `threshold` allocations (0: no change)."""
    if threshold <= 0:
        return
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    logger.info(
        "garbage collector: %d start-up objects frozen, gen0 collected every %d allocations",
        gc.get_freeze_count(),
        threshold,
    )


def tune_switch_interval(microseconds: int) -> None:
    """Let a thread waiting for the GIL have it after `microseconds` (0: no change)."""
    if microseconds <= 0:
        return
    sys.setswitchinterval(microseconds / 1_000_000)
    logger.info("GIL switch interval: %d microseconds", microseconds)


@contextmanager
def tuned_runtime(
    threshold: int = DEFAULT_GC_THRESHOLD, switch_us: int = DEFAULT_SWITCH_INTERVAL_US
) -> Iterator[None]:
    """`tune_gc` and `tune_switch_interval` for a while, then CPython's settings back (the
    benchmark's in-process scenarios run the orchestrator as `sagabank serve` would, inside the
    benchmark's own process)."""
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    tune_gc(threshold)
    tune_switch_interval(switch_us)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
