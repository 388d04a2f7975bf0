"""Settings, read from `SAGABANK_*` environment variables (and a `.env` file if present).

Every knob of the service lives in this package with its default and validation; nothing else
reads the environment. See the README's settings table.

One module per component, each a group of fields with its own validators and helpers:
`storage` (databases), `server` (what this process serves and whom it calls; `serve`'s runtime
tuning), `faults` (injected faults, demo accounts), `orchestration` (retries, retention,
leases), `choreography` (saga mode, broker), `observability` (logs, traces). The seam is there
so that a component's settings are read and changed in one short module, and a new component
adds a module. `Settings` below composes the groups into the one `BaseSettings` every caller
loads, and holds what spans groups: the checks across settings, in the order they always ran
(the first that fails is the message), and the helpers that read several groups.

The groups are plain pydantic models listed in reverse: pydantic collects fields from the last
base first, so the listing keeps the settings in their documented order (validation errors, the
JSON schema); `tests/unit/test_settings_groups.py` holds the order.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from functools import lru_cache

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from repository_after.config.choreography import ChoreographySettings, SagaMode
from repository_after.config.faults import FaultSettings
from repository_after.config.observability import ObservabilitySettings, OtelExporter
from repository_after.config.orchestration import RetrySettings, WorkerSettings
from repository_after.config.server import (
    DEFAULT_GC_THRESHOLD,
    DEFAULT_SWITCH_INTERVAL_US,
    RuntimeSettings,
    ServerSettings,
)
from repository_after.config.storage import StorageSettings
from repository_after.process_role import ProcessRole
from repository_after.service_map import HOSTED_PARTICIPANTS, ServiceConfig, resolve_services
from repository_after.settings_errors import ConfigurationError, describe

__all__ = [
    "DEFAULT_GC_THRESHOLD",
    "DEFAULT_SWITCH_INTERVAL_US",
    "HOSTED_PARTICIPANTS",  # re-exported: sagabank_tools reads it here
    "ConfigurationError",  # re-exported: where settings are loaded
    "OtelExporter",
    "ProcessRole",
    "SagaMode",
    "Settings",
    "get_settings",
    "load_settings",
]


class Settings(
    ObservabilitySettings,
    ChoreographySettings,
    WorkerSettings,
    RuntimeSettings,
    RetrySettings,
    FaultSettings,
    ServerSettings,
    StorageSettings,
    BaseSettings,
):
    model_config = SettingsConfigDict(env_prefix="SAGABANK_", env_file=".env", extra="ignore")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self._check_backoff()
        self._check_database_urls()
        self._check_leases()
        if self.retention_days * 86_400 < self.retry_horizon():
            raise ValueError(
                f"retention_days ({self.retention_days} days) is shorter than the orchestrator's "
                f"retry horizon ({self.retry_horizon():.0f} s): a retry could outlive the record "
                "that makes it idempotent"
            )
        return self

    def retry_horizon(self) -> float:
        """Seconds within which a saga's automatic calls can still reach a participant: the
        longest of the saga types' it runs (`SagaDefinition.retry_horizon`)."""
        return max(
            definition.retry_horizon(
                forward_deadline=self.retry_deadline, settle_deadline=self.settle_deadline
            )
            for definition in self.saga_definitions().values()
        )

    def resolved_worker_id(self) -> str:
        """This orchestrator worker's lease owner name: configured, else host:port.

        host:port is unique among live processes on a host (one listener per port) and stable
        across restarts, so a restarted worker reclaims its own sagas without waiting for the
        leases to expire (fencing keeps even a clash safe). Port 0 falls back to host-pid."""
        if self.worker_id:
            return self.worker_id
        host = socket.gethostname()
        return f"{host}:{self.port}" if self.port else f"{host}-{os.getpid()}"

    def resolved_services(self) -> Mapping[str, ServiceConfig]:
        """Every service this process's sagas may call (`service_map.resolve_services`):
        `SAGABANK_SERVICES`, plus the account service as "accounts" unless the map names it
        (`accounts_url`, else this very process, as before), plus `inventory` and `orders`
        unless the map names them, where the account service hosts them. `service_token` goes
        to the account service and those it hosts, never to a service listed with its own URL;
        batching needs `participant_max_in_flight` > 0 too."""
        return resolve_services(
            self.services,
            accounts_url=self.accounts_url or self._own_url(),
            service_token=self.service_token,
            batching=self.participant_max_in_flight > 0,
        )


def load_settings(**overrides: object) -> Settings:
    """`Settings` from the environment (and `overrides`), or a `ConfigurationError` saying
    what is wrong without echoing any value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(describe(exc)) from None
    except SettingsError as exc:  # a complex field (SAGABANK_SERVICES) that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"SAGABANK_{found.group(1).upper()}" if found else "a setting"
        raise ConfigurationError(f"{name}: not valid JSON") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
