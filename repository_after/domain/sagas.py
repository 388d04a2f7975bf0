"""The built-in saga types: name -> the definition new sagas of it start with.

`bootstrap.saga_types()` registers exactly these (each with its parameter model; a test keeps
the two equal), and `Settings` checks the retention period against their longest retry horizon.
"""

from __future__ import annotations

from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.order import ORDER
from repository_after.domain.saga import SagaDefinition
from repository_after.domain.transfer import TRANSFER

DEFINITIONS: dict[str, SagaDefinition] = {
    TRANSFER.name: TRANSFER,
    ORDER.name: ORDER,
    CLASS_ASSIGNMENT.name: CLASS_ASSIGNMENT,
}
