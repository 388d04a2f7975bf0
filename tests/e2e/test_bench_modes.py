"""The bench's modes scenario (issue 24, item 6) on a tiny load: orchestration and choreography
run the same seeded plan on real `sagabank serve` processes, the choreographed one over the
local RabbitMQ (a vhost of the test's own). No timing is asserted: what is checked is that both
modes end every saga alike with clean books, that what each run counts comes from the run (the
log rows equal in both modes, messages and inbox rows only where there is a broker), and that
the run's topology is gone from the broker afterwards."""

from __future__ import annotations

import math
from urllib.parse import unquote, urlsplit

import pytest

from sagabank_tools.bench.measure import LoadFigures
from sagabank_tools.bench.modes import mode_run
from tests.rabbit import ctl, fresh_vhost

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

N = 6


@pytest.mark.parametrize("saga", ["transfer", "order"])
def test_both_modes_end_the_same_plan_alike_and_count_what_each_wrote(
    saga: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_vhost() as url:
        monkeypatch.setenv("SAGABANK_BROKER_URL", url)
        vhost = unquote(urlsplit(url).path.lstrip("/"))
        prefix = f"bench-test-{saga}"
        runs = {
            mode: mode_run(saga=saga, mode=mode, n=N, concurrency=3, seed=5, prefix=prefix)
            for mode in ("orchestration", "choreography")
        }
        left = ctl("list_queues", "-p", vhost, "name") + ctl("list_exchanges", "-p", vhost, "name")

    assert not [line for line in left.splitlines() if line.startswith(prefix + ".")], left
    for figures in runs.values():
        for key in vars(LoadFigures(0, 0, 0, 0, 0)):
            assert math.isfinite(figures[key]), key
            assert figures[key] > 0, key
        assert figures["p50_ms"] <= figures["p99_ms"]
        assert figures["completed"] == N
        assert figures["audit_violations"] == 0
    orchestrated, choreographed = runs["orchestration"], runs["choreography"]
    # One state machine: the log holds the same events per saga whichever mode wrote it.
    assert orchestrated["saga_log_rows_per_saga"] == choreographed["saga_log_rows_per_saga"] > 0
    assert orchestrated["messages_per_saga"] == orchestrated["inbox_rows_per_saga"] == 0
    assert orchestrated["writes_per_saga"] == orchestrated["saga_log_rows_per_saga"]
    # Every message published: one per call, each taken in by its service's inbox and decided
    # under one turn, and the `ended` one, which only the tracker reads (without an inbox).
    calls = choreographed["messages_per_saga"] - 1
    assert choreographed["messages_per_saga"] == choreographed["outbox_rows_per_saga"] > 1
    assert choreographed["inbox_rows_per_saga"] == choreographed["turn_rows_per_saga"] == calls
    assert choreographed["writes_per_saga"] > orchestrated["writes_per_saga"]
