"""Reduced chaos runs: every fault family on real processes, and the books must stay exact.

Each seed runs transfers through the fault proxy while the orchestrator and the account service
are SIGKILLed at seeded points. The report must be clean (money conserved, no negative balance,
every saga terminal, nothing applied twice, clean audit, every saga matching the account
service's records) and every family must actually have been injected, or the run proved nothing.
The report is the chaos tool's verdict; the tests then read both databases themselves
(`tests/chaos/books.py`, plain SQL), so a tool whose checks always came back clean could not turn
a product that loses money green.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagabank_tools.chaos.runner import ChaosConfig, run
from sagabank_tools.chaos.schedule import TRANSFER_FAMILIES
from tests import mariadb
from tests.chaos import books
from tests.pg import fresh_database

# A run takes 10-15 s, but its own deadlines (each process's start-up, settle, drain) add up to
# more than the suite's default limit: they, not this backstop, should name a stuck run.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_chaos_run_with_every_fault_family_conserves_money(
    seed: int, tmp_path: Path
) -> None:
    outcome = await run(ChaosConfig(seed=seed, sagas=100, workdir=tmp_path, settle_timeout=60))
    report = outcome.report

    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == 100
    assert report.money_after == report.money_before
    assert {f.value for f in TRANSFER_FAMILIES} <= {f for f, n in report.faults.items() if n > 0}
    assert report.late_deliveries, "no delayed request reached the account service"
    assert report.batched_operations > 0, "no batch went through the faults"
    assert report.strangers_refused, "the run was made without the service token on"
    sqlite = f"sqlite:///{tmp_path}"
    found = books.problems(
        accounts_url=f"{sqlite}/accounts.db", sagas_url=f"{sqlite}/sagas.db", transfers=100
    )
    assert found == [], report.replay_command()


async def test_a_chaos_run_on_postgresql_conserves_money(tmp_path: Path) -> None:
    with fresh_database() as url:
        outcome = await run(
            ChaosConfig(seed=4, sagas=100, workdir=tmp_path, settle_timeout=90, database_url=url)
        )
        # Both services' tables share the one database; read before it is dropped.
        found = books.problems(accounts_url=url, sagas_url=url, transfers=100)
    report = outcome.report
    assert report.backend == "postgresql"
    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == 100
    assert {f.value for f in TRANSFER_FAMILIES} <= {f for f, n in report.faults.items() if n > 0}
    assert "--database-url" in report.replay_command()
    assert found == [], report.replay_command()


async def test_a_chaos_run_on_mariadb_conserves_money(tmp_path: Path) -> None:
    """A reduced run (one seed, 60 transfers, every fault family) with both services and the
    hosted participants on one MariaDB database (`mysql://`)."""
    with mariadb.fresh_database() as url:
        outcome = await run(
            ChaosConfig(seed=5, sagas=60, workdir=tmp_path, settle_timeout=90, database_url=url)
        )
        found = books.problems(accounts_url=url, sagas_url=url, transfers=60)
    report = outcome.report
    assert report.backend == "mariadb"
    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == 60
    assert {f.value for f in TRANSFER_FAMILIES} <= {f for f, n in report.faults.items() if n > 0}
    assert "--database-url <an empty mariadb database>" in report.replay_command()
    assert found == [], report.replay_command()
