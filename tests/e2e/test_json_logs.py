"""`SAGABANK_LOG_JSON=1`: every log line is one JSON object, and every line about a transaction
carries its id, on the orchestrator's side and on the account service's side alike."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Launcher


def test_every_log_line_of_a_saga_carries_its_transaction_id(
    launch: Launcher, tmp_path: Path
) -> None:
    service = launch(role="all", name="all", log_json=1, log_level="INFO", demo_accounts=2)
    log = tmp_path / "all.log"
    # Start-up recovery claims sagas leased under this worker's id: transfer once it has run.
    deadline = time.monotonic() + 30
    while "recovery:" not in log.read_text():
        assert time.monotonic() < deadline, "start-up recovery never ran"
        time.sleep(0.05)
    answer = httpx.post(
        f"{service.url}/transfers",
        headers={"transaction-id": "tr-json-1"},
        json={"source": "acc-01", "target": "acc-02", "amount": 100},
        timeout=10.0,
    )
    assert answer.json()["status"] == "completed"
    service.stop()

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    about = [line for line in lines if "tr-json-1" in line["message"]]
    loggers = {line["logger"] for line in about}
    assert "repository_after.service_layer.orchestrator" in loggers
    assert "repository_after.entrypoints.accounts_api" in loggers
    assert len(about) >= 6  # two intents, two attempts, the debit and the credit served
    assert all(line.get("transaction_id") == "tr-json-1" for line in about)
