"""The participant kit: what any FastAPI service needs to be a safe saga participant.

Register operations on a `ParticipantService` (`core`), keep business tables and records in one
store (`storage`), serve them with `participant_router` (`http`), check the result with the
contract suite (`contract`), and fail chosen operations on purpose (`faults`).
docs/participant-kit.md walks through the inventory service
(`repository_after/services/inventory.py`) as the example.
"""

from repository_after.participant_kit.core import (
    ALREADY_APPLIED,
    NOTHING_TO_COMPENSATE,
    VOIDED,
    Action,
    Compensation,
    Kind,
    Operations,
    ParticipantService,
    Refusal,
    Rejected,
)
from repository_after.participant_kit.faults import ParticipantFaults
from repository_after.participant_kit.http import (
    REPLAYED,
    EdgeHooks,
    Served,
    bearer_guard,
    install_error_handlers,
    participant_reads,
    participant_router,
)
from repository_after.participant_kit.records import Answer, Book, Record, canonical
from repository_after.participant_kit.storage import (
    ParticipantStore,
    SqliteParticipantStore,
    Tx,
)

__all__ = [
    "ALREADY_APPLIED",
    "NOTHING_TO_COMPENSATE",
    "REPLAYED",
    "VOIDED",
    "Action",
    "Answer",
    "Book",
    "Compensation",
    "EdgeHooks",
    "Kind",
    "Operations",
    "ParticipantFaults",
    "ParticipantService",
    "ParticipantStore",
    "Record",
    "Refusal",
    "Rejected",
    "Served",
    "SqliteParticipantStore",
    "Tx",
    "bearer_guard",
    "canonical",
    "install_error_handlers",
    "participant_reads",
    "participant_router",
]
