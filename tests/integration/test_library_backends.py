"""The saga library on every saga log it opens (`open_log`): a file path and a `sqlite:///` URL
(SQLite), `postgresql://` and `mysql://` (through `bootstrap.build_saga_log`), `memory://`. The
worked example's orders end as documented, and a second runner on the same durable log sees them
as the first left them (inspect, list) and joins them without calling any step again."""

from __future__ import annotations

from pathlib import Path

import pytest

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.library import SagaRunner, open_log
from repository_after.library.examples.order import example_orders, order_saga
from repository_after.library.examples.order_services import OrderServices

EXPECTED = {"order-1": "completed", "order-2": "compensated", "order-3": "compensated"}


@pytest.fixture(params=["path", "sqlite-url", "postgres-url", "mysql-url", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "path":
        return str(tmp_path / "sagas.db")
    if request.param == "sqlite-url":
        return f"sqlite:///{tmp_path / 'sagas.db'}"
    if request.param == "postgres-url":
        return str(request.getfixturevalue("postgres_url"))
    if request.param == "mysql-url":
        return str(request.getfixturevalue("mysql_url"))
    return "memory://"


async def test_the_example_runs_and_a_second_runner_sees_it_as_left(
    where: str, tmp_path: Path
) -> None:
    services = OrderServices(tmp_path / "services.db")
    saga = order_saga(services)
    async with SagaRunner([saga], log=where, observers=()) as runner:
        ran = {
            o.order_id: (await runner.run(saga, o, saga_id=o.order_id)).status
            for o in example_orders()
        }
    assert ran == EXPECTED
    effects = services.effects()
    assert len(effects) == 9
    if where == "memory://":
        return  # nothing to reopen

    async with SagaRunner([saga], log=where, observers=()) as again:
        seen = {s.saga_id: s.status for s in await again.list()}
        views = {o.order_id: await again.inspect(o.order_id) for o in example_orders()}
        rejoined = [await again.run(saga, o, saga_id=o.order_id) for o in example_orders()]
    services.close()
    assert seen == EXPECTED
    assert {k: v.status for k, v in views.items()} == EXPECTED
    assert views["order-2"].steps[2].action == "rejected"
    assert views["order-2"].steps[1].compensation == "succeeded"
    assert [v.status for v in rejoined] == list(EXPECTED.values())
    reread = OrderServices(tmp_path / "services.db")
    assert reread.effects() == effects  # nothing applied again
    reread.close()


async def test_open_log_picks_the_backend_by_what_it_is_given(tmp_path: Path) -> None:
    opened = [open_log(tmp_path / "a.db"), open_log(str(tmp_path / "b.db")), open_log("memory://")]
    kinds = [type(log) for log in opened]
    for log in opened:
        await log.close()
    assert kinds == [SqliteSagaLog, SqliteSagaLog, InMemorySagaLog]
    given = InMemorySagaLog()
    assert open_log(given) is given
