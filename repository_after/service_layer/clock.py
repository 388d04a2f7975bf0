"""`utc_now()`: the current UTC time as ISO 8601 with microseconds, cheaply.

Every saga event and every log write carries one, several per transfer, so the formatting is on
the hot path: the seconds part is formatted once per second and only the microseconds per call.
Same text as `datetime.now(UTC).isoformat(timespec="microseconds")`, e.g.
`2026-11-23T10:15:02.123456+00:00`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_second: tuple[int, str] = (-1, "")


def utc_now() -> str:
    global _second
    # Integer microseconds: no float rounding, and cheaper than the float arithmetic it replaced.
    whole, micros = divmod(time.time_ns() // 1000, 1_000_000)
    second, prefix = _second
    if whole != second:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, prefix)
    return f"{prefix}.{micros:06d}+00:00"
