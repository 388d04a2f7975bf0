"""What a demo or test deployment adds to a service: injected faults, and the demo accounts the
account service opens at start.

A group of its own because none of it is production configuration: a deployment sets these to
show or test the sagas' failure handling (`sagabank demo`, the chaos runs), and reading them in
one place shows what a production deployment must leave at its defaults or switch off.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from repository_after.participant_kit.faults import ParticipantFaults
from repository_after.service_layer.faults import FaultMode
from repository_after.service_map import HOSTED_PARTICIPANTS


class FaultSettings(BaseModel):
    credit_failure_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    credit_failure_mode: FaultMode = FaultMode.BEFORE
    fault_seed: int | None = None
    # `SAGABANK_PARTICIPANT_FAULTS` (JSON): the inventory's and the orders service's injected
    # faults, name -> {"operations", "rate", "mode", "seed"} (`participant_kit.faults`); none
    # by default.
    participant_faults: dict[str, ParticipantFaults] = Field(default_factory=dict)

    demo_accounts: int = Field(default=10, ge=0, le=10_000)
    demo_balance: int = Field(default=100_000, ge=0, le=10**12)

    @field_validator("participant_faults")
    @classmethod
    def _faulty_participants(
        cls, value: dict[str, ParticipantFaults]
    ) -> dict[str, ParticipantFaults]:
        for name in value:
            if name not in HOSTED_PARTICIPANTS:
                raise ValueError(f"no participant {name[:64]!r}: {', '.join(HOSTED_PARTICIPANTS)}")
        return value
