"""The account service's face on PostgreSQL (`choreography/pg_store.py`): a transaction rerun
after a lost race (a unique violation on the inbox or a turn, which `PostgresDatabase` answers
by running the whole transaction again) is still ONE delivery: its fault is drawn once
(`account_faults`), as on SQLite, where the group commit reruns a job with the same `Tx`."""

from __future__ import annotations

from psycopg import errors

from repository_after.adapters.postgres_db import PostgresDatabase
from repository_after.choreography.account_faults import AccountFaults
from repository_after.choreography.pg_store import SharedPostgresStore
from repository_after.participant_kit.storage import Tx
from repository_after.service_layer.faults import FaultPoint


class CountingInjector:
    def __init__(self) -> None:
        self.draws = 0

    def draw(self, key: str) -> FaultPoint:
        self.draws += 1
        return FaultPoint.NONE


async def test_a_rerun_transaction_is_one_delivery_with_one_fault_draw(postgres_url: str) -> None:
    store = SharedPostgresStore(PostgresDatabase(postgres_url, component="accounts"), owns=True)
    injector = CountingInjector()
    faults = AccountFaults(injector, in_a_row=1)  # type: ignore[arg-type]
    runs: list[Tx] = []

    def deliver(tx: Tx) -> str:
        runs.append(tx)
        faults.draw(tx, "credit", "saga-1")
        tx.execute("SELECT 1")  # on this attempt's connection
        if len(runs) == 1:
            raise errors.UniqueViolation("lost the race for the inbox row")
        return "applied"

    try:
        assert await store.transaction(deliver) == "applied"
    finally:
        await store.close()
    assert len(runs) == 2
    assert runs[0] is runs[1]
    assert injector.draws == 1
