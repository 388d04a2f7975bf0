"""A delayed request really lands after the orchestrator gave up on it, and is fenced.

Only the delay family is on, at a high rate and with delays well past the attempt timeout
(0.3 s) and the debit's three attempts, so some debits are compensated before any of their
attempts arrives; the late debit must then be refused (409 `transaction_compensated`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagabank_tools.chaos import records
from sagabank_tools.chaos.runner import ChaosConfig, run
from sagabank_tools.chaos.schedule import Family, Rates
from tests.chaos import books

# A chaos run (delays of seconds on purpose): its own deadlines add up to more than the suite's
# default limit, as in test_chaos_run.py.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


async def test_a_delayed_request_lands_after_the_orchestrator_timed_out_and_is_fenced(
    tmp_path: Path,
) -> None:
    config = ChaosConfig(
        seed=5,
        sagas=40,
        families=(Family.DELAY,),
        rates=Rates(delay=0.5, delay_range=(1.5, 2.5)),
        workdir=tmp_path,
        settle_timeout=60,
    )
    outcome = await run(config)
    assert outcome.report.violations == []
    # The books read independently of the chaos tool's report (tests/chaos/books.py).
    sqlite = f"sqlite:///{tmp_path}"
    found = books.problems(
        accounts_url=f"{sqlite}/accounts.db", sagas_url=f"{sqlite}/sagas.db", transfers=40
    )
    assert found == []

    # Every late request left the proxy after the orchestrator had recorded that very attempt
    # as timed out, and the account service answered it (no 502: it was delivered).
    # The proxy numbers the deliveries of each (transaction, operation) through the whole run,
    # while attempt numbers start again at 1 when an operator retries a parked saga (a
    # compensation that timed out every time: the runner retries parked sagas). So delivery n
    # is the n-th attempt of that operation in the saga's history, whatever its number.
    assert outcome.proxy.late
    for late in outcome.proxy.late:
        attempts = [
            a
            for a in outcome.views[late.transaction_id]["attempts"]
            if a["operation"] == late.operation
        ]
        assert len(attempts) >= late.delivery, late
        attempt = attempts[late.delivery - 1]
        assert attempt["error"] == "timeout", late
        assert attempt["finished_at"] < late.forwarded_at, late
        assert late.status in (200, 409), late

    # Some debits arrived only after their compensation had left a tombstone: refused, and the
    # account service holds no debit for them.
    ops = records.read_operations(outcome.accounts_database_url)
    fenced = [
        late
        for late in outcome.proxy.late
        if late.operation == "debit" and late.error == "transaction_compensated"
    ]
    assert fenced, "no late debit met its compensation: the test proved nothing"
    for late in fenced:
        assert ops[("compensate_debit", late.transaction_id)] == "nothing_to_compensate"
        assert ("debit", late.transaction_id) not in ops
        assert outcome.statuses[late.transaction_id] == "compensated"
