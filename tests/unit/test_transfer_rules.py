"""The transfer rule lives in the service layer: a transfer to its own source is refused before
anything is logged, and the error table answers it 422 `same_account`."""

from __future__ import annotations

from typing import Any, cast

import pytest

from repository_after.domain.errors import SameAccount
from repository_after.entrypoints.errors import answer_for
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.transfers import run_transfer


class _NoSagaMayStart:
    async def start(self, *args: Any, **kwargs: Any) -> tuple[str, bool]:
        raise AssertionError("a refused transfer must not be logged")


async def test_a_transfer_to_its_own_source_is_refused_before_it_is_logged() -> None:
    orchestrator = cast(Orchestrator, _NoSagaMayStart())
    with pytest.raises(SameAccount) as refused:
        await run_transfer(
            orchestrator=orchestrator,
            source="a",
            target="a",
            amount=1,
            transaction_id=None,
            wait=0.0,
        )
    answer = answer_for(refused.value)
    assert answer is not None
    assert answer.status_code == 422
    assert answer.body == {"error": "same_account", "message": "source and target must differ"}
