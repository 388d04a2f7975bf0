"""The bench's arithmetic: medians, ratios of medians, ratios within each repetition, targets."""

from __future__ import annotations

from typing import Any

from sagabank_tools.bench.measure import median_of
from sagabank_tools.bench.runner import floors, paired_ratios, ratios, targets

SYSTEMS = ("after", "before", "cqrs")


def each_of(per_second: dict[str, list[float]]) -> dict[str, list[dict[str, float]]]:
    """Three repetitions; c=1 runs at a tenth of c=32."""
    each = {}
    for system in SYSTEMS:
        for c, scale in ((1, 0.1), (32, 1.0)):
            each[f"http_{system}_c{c}"] = [
                {"per_second": v * scale, "p99_ms": 50.0} for v in per_second[system]
            ]
    return each


def test_ratios_within_each_repetition_pair_the_systems_of_one_repetition() -> None:
    # A slow third repetition: sagabank fell from 1,000 to 600, python-cqrs from 40 to 20.
    each = each_of({"after": [1000, 900, 600], "before": [200, 180, 150], "cqrs": [40, 36, 20]})
    paired = paired_ratios(each)
    assert paired["after/cqrs at c=32"] == [25.0, 25.0, 30.0]
    assert paired["after/before at c=1"] == [5.0, 5.0, 4.0]
    # The ratio of the medians pairs 900 with 36: the same here, not in general.
    results: dict[str, Any] = {key: median_of(runs) for key, runs in each.items()}
    assert ratios(results)["after/cqrs at c=32"] == 25.0
    each["http_cqrs_c32"][0]["per_second"] = 10.0  # python-cqrs's first run much slower
    results = {key: median_of(runs) for key, runs in each.items()}
    assert ratios(results)["after/cqrs at c=32"] == 900 / 20
    assert paired_ratios(each)["after/cqrs at c=32"] == [100.0, 25.0, 30.0]


def test_targets_are_checked_against_the_medians() -> None:
    each = each_of({"after": [1000, 900, 600], "before": [200, 180, 150], "cqrs": [40, 36, 20]})
    results: dict[str, Any] = {key: median_of(runs) for key, runs in each.items()}
    results["noop_sagas"] = {"sagas_per_second": 4_999.0}
    results["recovery"] = {"seconds": 10.0}
    results["memory"] = {"growth_pct": 0.5}
    met = {name: ok for name, _, _, ok in targets(results)}
    assert met == {
        "after/before at c=32": True,  # 900 / 180 = 5
        "after/cqrs at c=32": True,  # 900 / 36 = 25, the bound itself
        "no-op sagas/s": False,
        "p99 ms at c=32 (at most)": False,
        "recovery of 10,000 sagas, s (at most)": True,
        "RSS growth 10k -> 200k, % (at most)": True,
    }


def test_issue_19_floors_are_checked_against_the_ratios_of_the_medians() -> None:
    each = each_of({"after": [1000, 900, 600], "before": [200, 230, 150], "cqrs": [40, 45, 50]})
    results: dict[str, Any] = {key: median_of(runs) for key, runs in each.items()}
    met = {name: (round(value, 2), ok) for name, value, _, ok in floors(results)}
    assert met == {
        "after/before at c=32": (4.5, True),  # 900 / 200
        "after/cqrs at c=32": (20.0, True),  # 900 / 45, the floor itself
    }
    results["http_cqrs_c32"]["per_second"] = 46.0
    assert [ok for *_, ok in floors(results)] == [True, False]
