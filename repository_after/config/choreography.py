"""How sagas run (`SagaMode`), and the message broker of choreographed ones.

A group of its own because only a choreographed deployment reads the broker settings
(`repository_after/messaging`, `repository_after/choreography`, docs/choreography.md); the
mode beside them is the switch that makes them matter.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, SecretStr


class SagaMode(StrEnum):
    """How sagas run: called by the orchestrator, or choreographed over the broker."""

    ORCHESTRATION = "orchestration"
    CHOREOGRAPHY = "choreography"


class ChoreographySettings(BaseModel):
    # The message broker of choreographed sagas (`repository_after/messaging`,
    # docs/choreography.md): its URL names the deployment's vhost (`/` by default).
    broker_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    # How sagas run (`--mode`, docs/choreography.md): `orchestration` (the orchestrator calls
    # each service over HTTP) or `choreography` (each service reacts to the broker's events).
    mode: SagaMode = SagaMode.ORCHESTRATION
    # Choreography: the exchange and queue names' prefix (`<prefix>.events`, `<prefix>.accounts`,
    # ...), one per deployment on a shared vhost; each queue's delivery limit; how often the
    # tracker looks for timed-out sagas and dead letters.
    broker_prefix: str = Field(default="sagabank", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    broker_delivery_limit: int = Field(default=5, ge=0, le=1000)
    tracker_interval: float = Field(default=1.0, gt=0.0, le=600.0)
    #: how long a relay's claim on outbox rows lasts: a relay that died holding a claim delays
    #: those rows by up to this much (docs/choreography.md, "The outbox relay")
    relay_claim_ttl: float = Field(default=30.0, gt=0.0, le=3600.0)
