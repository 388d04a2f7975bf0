"""Schema fuzzing with schemathesis against a live account service on loopback (faults off).

Every operation of the OpenAPI document is called with generated valid and invalid data: no 5xx,
every response conforms to its declared schema, every status code returned is declared.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from repository_after.entrypoints.service_process import ServiceProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    workdir: Path = tmp_path_factory.mktemp("schemathesis")
    env = {
        "SAGABANK_DATABASE_URL": f"sqlite:///{workdir / 'accounts.db'}",
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_LOG_LEVEL": "WARNING",
    }
    with ServiceProcess(env=env, role="accounts", log_path=workdir / "accounts.log") as service:
        yield schemathesis.openapi.from_url(f"{service.url}/openapi.json")


def test_every_operation_conforms_to_the_openapi_document(
    live_schema: schemathesis.BaseSchema,
) -> None:
    # schemathesis' pytest plugin does not support pytest 9 yet, so each operation's strategy is
    # driven by hypothesis directly; the checks are the same (`call_and_validate`). Excluded:
    # "schema-valid data is accepted" — JSON Schema counts 5.0 as an integer, while sagabank
    # deliberately refuses any JSON float as an amount (no float near a balance).
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 9
    exercised: list[tuple[str, GenerationMode]] = []
    for operation, mode in product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            conforms()
        except Unsatisfiable:
            # No invalid request exists for an operation without inputs (GET /health).
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        exercised.append((operation.label, mode))
    negative = [label for label, mode in exercised if mode is GenerationMode.NEGATIVE]
    assert {"POST /debit", "POST /credit", "POST /accounts"} <= set(negative)
    assert len(exercised) >= len(operations) + 5
