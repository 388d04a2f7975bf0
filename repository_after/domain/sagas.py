"""The built-in saga types: name -> the definition new sagas of it start with.

`bootstrap.saga_types()` registers exactly these (each with its parameter model; a test keeps
the two equal), and `Settings` checks the retention period against their longest retry horizon.
`OPT_IN` are the types a server registers only when asked (`SAGABANK_EXTRA_SAGAS`, `definitions`):
the A → B → C example (`domain/abc.py`), which `sagabank demo --saga abc` runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from repository_after.domain.abc import ABC
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.order import ORDER
from repository_after.domain.saga import SagaDefinition
from repository_after.domain.transfer import TRANSFER

DEFINITIONS: dict[str, SagaDefinition] = {
    TRANSFER.name: TRANSFER,
    ORDER.name: ORDER,
    CLASS_ASSIGNMENT.name: CLASS_ASSIGNMENT,
}

#: The types a server runs only when its settings name them (`SAGABANK_EXTRA_SAGAS`).
OPT_IN: dict[str, SagaDefinition] = {ABC.name: ABC}


def definitions(extra: Iterable[str] = ()) -> dict[str, SagaDefinition]:
    """The built-in types plus the opt-in types named in `extra` (KeyError for another name)."""
    return {**DEFINITIONS, **{name: OPT_IN[name] for name in extra}}
