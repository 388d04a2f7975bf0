"""The garbage collector's settings for a serving process (`sagabank serve`).

Why: every transfer allocates thousands of short-lived containers (coroutines, tuples, dicts).
With CPython's default gen0 threshold (700 allocations) the cyclic collector runs every few
requests, and now and then a full collection walks every object the process holds, imported
code included. Those pauses made the latency's tail: at c=32, p99 fell from 58-83 ms to 40-50 ms
with this module, and throughput rose a few % (docs/performance.md, third round).

What: `gc.freeze()` moves everything start-up made (modules, classes, the app) out of the
collector's sight for good, and a higher gen0 threshold collects less often. Reference counting
still frees almost every object at once; cycles are still collected, only in larger sweeps.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from repository_after.config import DEFAULT_GC_THRESHOLD

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


@contextmanager
def tuned_gc(threshold: int = DEFAULT_GC_THRESHOLD) -> Iterator[None]:
    """`tune_gc` for a while, then CPython's settings back (the benchmark's in-process scenarios
    run the orchestrator as `sagabank serve` would, inside the benchmark's own process)."""
    before = gc.get_threshold()
    tune_gc(threshold)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
