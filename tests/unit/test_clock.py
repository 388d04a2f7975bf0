"""`clock.utc_now`: the text of `datetime.isoformat(timespec="microseconds")` in UTC, cheaply."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from repository_after.service_layer.clock import utc_now

ISO_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def test_utc_now_is_iso_8601_with_microseconds_between_two_readings_of_the_clock() -> None:
    for _ in range(2_000):  # enough calls to cross into a new second now and then
        # datetime and utc_now may round the last microsecond differently: allow 1 µs either way
        before = datetime.now(UTC) - timedelta(microseconds=1)
        text = utc_now()
        after = datetime.now(UTC)
        assert ISO_MICROS.fullmatch(text), text
        assert before <= datetime.fromisoformat(text) <= after + timedelta(microseconds=1)


def test_utc_now_reads_as_the_same_text_datetime_writes() -> None:
    text = utc_now()
    assert datetime.fromisoformat(text).isoformat(timespec="microseconds") == text
