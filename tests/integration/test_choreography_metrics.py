"""`/metrics` in choreography: each outbox's backlog (unpublished rows, and those whose last
publication failed) read at scrape time, and the dead letters the tracker counted at its last
scan. In process (the in-memory broker, real SQLite files, composed as `serve` composes them),
the figures read through the same `SagaMetrics` the endpoint renders."""

from __future__ import annotations

from pathlib import Path

from repository_after.domain.saga import SagaStatus
from repository_after.entrypoints.choreography_host import Choreographed
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.observability.metrics import SagaMetrics
from tests.choreography_support import Deployment, deployment

TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 100}


def _metrics(dep: Deployment) -> SagaMetrics:
    metrics = SagaMetrics()
    metrics.messaging = Choreographed(dep.runtime, dep.broker).figures
    return metrics


async def _scraped(metrics: SagaMetrics) -> str:
    await metrics.refresh_messaging()
    return metrics.render().decode()


async def test_an_outbox_failing_to_publish_shows_until_it_drains(tmp_path: Path) -> None:
    broker = InMemoryBroker()
    async with deployment(tmp_path, broker) as dep:
        metrics = _metrics(dep)
        broker.fail_next_publishes(20)  # the relay backs off (to 0.1 s): about two seconds
        await dep.start("transfer", TRANSFER, "t-1")

        async def failing() -> bool:
            return 'sagabank_outbox_failing{store="accounts"} 1.0' in await _scraped(metrics)

        await dep.until(failing)
        assert 'sagabank_outbox_backlog{store="accounts"} 1.0' in metrics.render().decode()
        assert await dep.settled("t-1") == SagaStatus.COMPLETED
        text = await _scraped(metrics)
    for store in ("accounts", "inventory", "orders"):
        assert f'sagabank_outbox_backlog{{store="{store}"}} 0.0' in text
        assert f'sagabank_outbox_failing{{store="{store}"}} 0.0' in text


async def test_the_dead_letters_counted_at_the_last_scan_show(tmp_path: Path) -> None:
    async with deployment(tmp_path, InMemoryBroker()) as dep:
        metrics = _metrics(dep)
        tracker = dep.runtime.tracker
        assert tracker is not None
        dep.blocked.add("credit")  # every delivery fails: over the limit, dead-lettered
        await dep.start("transfer", TRANSFER, "t-1")
        assert await dep.settled("t-1") == SagaStatus.FAILED_NEEDS_ATTENTION
        await tracker.scan()
        assert "sagabank_dead_letters 1.0" in await _scraped(metrics)
        dep.blocked.discard("credit")
        await dep.orchestrator.retry("t-1", note="credit fixed")  # redriven
        await tracker.scan()
        assert "sagabank_dead_letters 0.0" in await _scraped(metrics)


async def test_an_orchestrated_server_shows_no_messaging_series() -> None:
    metrics = SagaMetrics()
    text = await _scraped(metrics)
    assert "sagabank_outbox_backlog" not in text
    assert "sagabank_dead_letters" not in text
