"""The kit-store bench (`sagabank_tools.bench.kit_commit`) runs both stores on a tiny load; no
timing is asserted, only that both were measured and the ratio is theirs."""

from __future__ import annotations

import pytest

from sagabank_tools.bench import kit_commit


def test_the_bench_measures_both_stores_and_divides_their_medians() -> None:
    results = kit_commit.run(calls=12, concurrencies=[4], repetitions=1)
    medians = results["medians"]
    assert set(medians) == {"one_at_a_time c=4", "group_commit c=4"}
    assert all(len(runs) == 1 for runs in results["each_repetition"].values())
    group, alone = medians["group_commit c=4"], medians["one_at_a_time c=4"]
    assert results["ratios"]["c=4"] == pytest.approx(group["per_second"] / alone["per_second"])
    assert results["paired"]["c=4"] == [pytest.approx(results["ratios"]["c=4"])]  # one pair
    assert all(figures["p50_ms"] <= figures["p99_ms"] for figures in medians.values())
