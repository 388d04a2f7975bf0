"""How the orchestrator drives sagas: its retries and deadlines, how long records are kept, and
how several orchestrator workers share one saga log (leases).

A group of its own because these settings belong to the orchestrator alone (a participant-only
process ignores them) and hang together: the retry horizon they imply bounds the retention
period, and the claim interval the lease ttl (`Settings._check`, which sees them all).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class RetrySettings(BaseModel):
    retry_attempts: int = Field(default=3, ge=1, le=100)
    settle_attempts: int = Field(default=10, ge=1, le=1000)
    retry_initial_backoff: float = Field(default=0.05, gt=0.0)
    retry_max_backoff: float = Field(default=2.0, gt=0.0)
    attempt_timeout: float = Field(default=5.0, gt=0.0)
    retry_deadline: float = Field(default=30.0, gt=0.0)
    settle_deadline: float = Field(default=120.0, gt=0.0)
    transfer_wait: float = Field(default=5.0, ge=0.0)
    # Calls to the account service: at most this many HTTP exchanges in flight; calls that find
    # them busy leave together as one `POST /batch` (0 turns batching off: one request per call).
    participant_max_in_flight: int = Field(default=4, ge=0, le=1000)
    retention_days: float = Field(default=30.0, gt=0.0)

    def _check_backoff(self) -> None:
        if self.retry_max_backoff < self.retry_initial_backoff:
            raise ValueError("retry_max_backoff must be >= retry_initial_backoff")


class WorkerSettings(BaseModel):
    # Orchestrator workers sharing one saga log (see README "PostgreSQL and several workers").
    worker_id: str | None = Field(default=None, min_length=1, max_length=200)
    lease_ttl: float = Field(default=10.0, gt=0.0, le=3600.0)
    claim_interval: float = Field(default=1.0, gt=0.0, le=600.0)
    # A saga of a version this server lacks is parked only after this long without progress
    # (`service_layer/resumption.py`); unset: 10 lease ttls (`resolved_unknown_version_grace`).
    unknown_version_grace: float | None = Field(default=None, gt=0.0)

    @field_validator("worker_id", "unknown_version_grace", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def _check_leases(self) -> None:
        if self.claim_interval * 2 > self.lease_ttl:
            raise ValueError("claim_interval must be at most half of lease_ttl")
        if self.resolved_unknown_version_grace() <= self.lease_ttl:
            # A saga whose server died is free only a ttl after its last renewal: a shorter
            # grace would let the sweep park it before a server with its version could claim it
            # (docs/operations.md, rolling upgrade).
            raise ValueError("unknown_version_grace must be longer than lease_ttl")

    def resolved_unknown_version_grace(self) -> float:
        """Seconds without progress after which a saga of a version this server lacks is
        parked: configured, else 10 lease ttls."""
        if self.unknown_version_grace is not None:
            return self.unknown_version_grace
        return 10 * self.lease_ttl
