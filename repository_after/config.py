"""Settings, read from `SAGABANK_*` environment variables (and a `.env` file if present).

Every knob of the service lives here with its default and validation; nothing else reads the
environment. See the README's settings table.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from repository_after.domain.classes import CLASSES, PUPILS
from repository_after.domain.order import INVENTORY, ORDERS
from repository_after.domain.saga import SagaDefinition
from repository_after.domain.sagas import OPT_IN, definitions
from repository_after.domain.transfer import ACCOUNTS
from repository_after.participant_kit.faults import ParticipantFaults
from repository_after.process_role import ProcessRole as ProcessRole  # re-exported
from repository_after.service_layer.faults import FaultMode
from repository_after.service_map import (
    HOSTED_PARTICIPANTS as HOSTED_PARTICIPANTS,  # re-exported: sagabank_tools reads it here
)
from repository_after.service_map import (
    SERVICE_NAME_PATTERN,
    ServiceConfig,
    ServiceEntry,
    check_service_url,
    resolve_services,
)
from repository_after.settings_errors import (
    ConfigurationError as ConfigurationError,  # re-exported: where settings are loaded
)
from repository_after.settings_errors import describe


class OtelExporter(StrEnum):
    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"


#: `SAGABANK_GC_THRESHOLD`'s default (`entrypoints/runtime_tuning.py`): 20,000 and 100,000
#: measured alike, both far above CPython's 700.
DEFAULT_GC_THRESHOLD = 20_000
#: `SAGABANK_SWITCH_INTERVAL_US`'s default (`entrypoints/runtime_tuning.py`): CPython's is 5,000.
DEFAULT_SWITCH_INTERVAL_US = 100


class SagaMode(StrEnum):
    """How sagas run: called by the orchestrator, or choreographed over the broker."""

    ORCHESTRATION = "orchestration"
    CHOREOGRAPHY = "choreography"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAGABANK_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./data/sagabank.db"
    # The inventory's and the orders service's databases (`participant_database`): by default a
    # SQLite file beside `database_url`'s (`sagabank-inventory.db`), its very database on
    # PostgreSQL or MariaDB, in memory with `memory://`.
    inventory_database_url: str | None = None
    orders_database_url: str | None = None
    # The classes saga's pupils and classes services' databases, likewise
    # (`sagabank-pupils.db`, `sagabank-classes.db` by default).
    pupils_database_url: str | None = None
    classes_database_url: str | None = None
    # Comma-separated opt-in saga types this server registers beside the built-in ones
    # (`domain.sagas.OPT_IN`: `abc`, the A → B → C example); none by default.
    extra_sagas: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    role: ProcessRole = ProcessRole.ALL
    accounts_url: str | None = None
    # The services sagas call (`SAGABANK_SERVICES`, JSON): name -> {"url", "batching", "token"};
    # the account service is added as "accounts" (`accounts_url`) unless named here
    # (`service_map`: where each token goes).
    services: dict[str, ServiceEntry] = Field(default_factory=dict)
    admin_token: SecretStr | None = None
    # What the orchestrator presents to the account service's money-moving endpoints and to the
    # participants that service hosts (and what those endpoints ask for, when set); never to a
    # service listed with its own URL (`service_map`); never the admin token, which opens no
    # money route.
    service_token: SecretStr | None = None
    # With either this or `admin_token` set, the reads (accounts, entries, transfers, audit,
    # metrics, dashboard data) need one of the two; this one opens nothing that changes state.
    read_token: SecretStr | None = None
    # Comma-separated `Host` names served (`entrypoints/limits.py`); empty: the loopback names
    # plus the bind host unless it is a wildcard address; `*`: any host.
    trusted_hosts: str = ""

    credit_failure_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    credit_failure_mode: FaultMode = FaultMode.BEFORE
    fault_seed: int | None = None
    # `SAGABANK_PARTICIPANT_FAULTS` (JSON): the inventory's and the orders service's injected
    # faults, name -> {"operations", "rate", "mode", "seed"} (`participant_kit.faults`); none
    # by default.
    participant_faults: dict[str, ParticipantFaults] = Field(default_factory=dict)

    demo_accounts: int = Field(default=10, ge=0, le=10_000)
    demo_balance: int = Field(default=100_000, ge=0, le=10**12)

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
    # `sagabank serve`: CPython's gen0 collection threshold, after freezing what start-up made
    # (`entrypoints/runtime_tuning.py`); 0 keeps CPython's defaults.
    gc_threshold: int = Field(default=DEFAULT_GC_THRESHOLD, ge=0, le=10_000_000)
    # `sagabank serve`: the GIL's switch interval in µs, so that the database's writer thread
    # gets the GIL soon after its fsync (`entrypoints/runtime_tuning.py`); 0 keeps CPython's.
    switch_interval_us: int = Field(default=DEFAULT_SWITCH_INTERVAL_US, ge=0, le=1_000_000)

    # Orchestrator workers sharing one saga log (see README "PostgreSQL and several workers").
    worker_id: str | None = Field(default=None, min_length=1, max_length=200)
    lease_ttl: float = Field(default=10.0, gt=0.0, le=3600.0)
    claim_interval: float = Field(default=1.0, gt=0.0, le=600.0)
    # A saga of a version this server lacks is parked only after this long without progress
    # (`service_layer/resumption.py`); unset: 10 lease ttls (`resolved_unknown_version_grace`).
    unknown_version_grace: float | None = Field(default=None, gt=0.0)

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

    log_json: bool = False
    log_level: str = "INFO"

    # Traces (docs/operations.md): off by default; OTLP over HTTP to the collector's endpoint.
    otel_exporter: OtelExporter = OtelExporter.NONE
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"

    @field_validator(
        "admin_token",
        "service_token",
        "read_token",
        "worker_id",
        "accounts_url",
        "inventory_database_url",
        "orders_database_url",
        "pupils_database_url",
        "classes_database_url",
        "unknown_version_grace",
        mode="before",
    )
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("extra_sagas")
    @classmethod
    def _opt_in_sagas(cls, value: str) -> str:
        for name in _names(value):
            if name not in OPT_IN:
                raise ValueError(f"no opt-in saga type {name[:64]!r}: {', '.join(OPT_IN)}")
        return value

    @field_validator("accounts_url")
    @classmethod
    def _accounts_url(cls, value: str | None) -> str | None:
        return None if value is None else check_service_url(value)

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceEntry]) -> dict[str, ServiceEntry]:
        for name in value:
            if not SERVICE_NAME_PATTERN.fullmatch(name):
                raise ValueError(
                    f"service name {name[:64]!r} is not 1-64 letters, digits or '._:-'"
                )
        return value

    @field_validator("participant_faults")
    @classmethod
    def _faulty_participants(
        cls, value: dict[str, ParticipantFaults]
    ) -> dict[str, ParticipantFaults]:
        for name in value:
            if name not in HOSTED_PARTICIPANTS:
                raise ValueError(f"no participant {name[:64]!r}: {', '.join(HOSTED_PARTICIPANTS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.retry_max_backoff < self.retry_initial_backoff:
            raise ValueError("retry_max_backoff must be >= retry_initial_backoff")
        for url in (
            self.database_url,
            self.inventory_database_url,
            self.orders_database_url,
            self.pupils_database_url,
            self.classes_database_url,
        ):
            if url is not None and not url.startswith(
                (
                    "sqlite:///",
                    "memory://",
                    "postgresql://",
                    "postgres://",
                    "mysql://",
                    "mariadb://",
                )
            ):
                raise ValueError(
                    "database_url (and inventory_database_url, orders_database_url, "
                    "pupils_database_url, classes_database_url) must be "
                    "sqlite:///<path>, postgresql://..., mysql://... or memory://"
                )
        if self.claim_interval * 2 > self.lease_ttl:
            raise ValueError("claim_interval must be at most half of lease_ttl")
        if self.resolved_unknown_version_grace() <= self.lease_ttl:
            # A saga whose server died is free only a ttl after its last renewal: a shorter
            # grace would let the sweep park it before a server with its version could claim it
            # (docs/operations.md, rolling upgrade).
            raise ValueError("unknown_version_grace must be longer than lease_ttl")
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

    def extra_saga_names(self) -> tuple[str, ...]:
        """The opt-in saga types of `extra_sagas`, in the order given, each once."""
        return tuple(dict.fromkeys(_names(self.extra_sagas)))

    def saga_definitions(self) -> dict[str, SagaDefinition]:
        """The saga types this server runs: the built-in ones and `extra_sagas`."""
        return definitions(self.extra_saga_names())

    def resolved_unknown_version_grace(self) -> float:
        """Seconds without progress after which a saga of a version this server lacks is
        parked: configured, else 10 lease ttls."""
        if self.unknown_version_grace is not None:
            return self.unknown_version_grace
        return 10 * self.lease_ttl

    def resolved_worker_id(self) -> str:
        """This orchestrator worker's lease owner name: configured, else host:port.

        host:port is unique among live processes on a host (one listener per port) and stable
        across restarts, so a restarted worker reclaims its own sagas without waiting for the
        leases to expire (fencing keeps even a clash safe). Port 0 falls back to host-pid."""
        if self.worker_id:
            return self.worker_id
        host = socket.gethostname()
        return f"{host}:{self.port}" if self.port else f"{host}-{os.getpid()}"

    def resolved_trusted_hosts(self) -> tuple[str, ...]:
        """The `Host` names this process answers: configured, else the loopback names and the
        bind host (a wildcard bind says nothing about the name clients use)."""
        if self.trusted_hosts.strip():
            return tuple(h.strip() for h in self.trusted_hosts.split(",") if h.strip())
        loopback = ("127.0.0.1", "localhost", "::1")
        wildcard = self.host in ("0.0.0.0", "::", "")
        return loopback if wildcard or self.host in loopback else (*loopback, self.host)

    def resolved_accounts_url(self) -> str:
        """The account service the orchestrator calls: `SAGABANK_SERVICES`' "accounts", else
        `accounts_url`, else this very process."""
        if ACCOUNTS in self.services:
            return self.services[ACCOUNTS].url
        if self.accounts_url:
            return self.accounts_url
        return self._own_url()

    def _own_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def participant_database(self, name: str) -> Path | str:
        """The database of the hosted participant `name` (`inventory`, `orders`): its own
        setting if given, else derived from `database_url`: a SQLite file beside its file
        (`data/sagabank.db` -> `data/sagabank-inventory.db`), the same PostgreSQL or MariaDB
        database (the services' tables differ; their records share the kit's table, under
        distinct operation names), SQLite in memory for `memory://`. A `Path` for SQLite, the
        URL for a server."""
        own = {
            INVENTORY: self.inventory_database_url,
            ORDERS: self.orders_database_url,
            PUPILS: self.pupils_database_url,
            CLASSES: self.classes_database_url,
        }.get(name)  # the A → B → C services (`abc-a`…) have no setting of their own
        url = own or self.database_url
        if url.startswith(("postgresql://", "postgres://", "mysql://", "mariadb://")):
            return url
        if url.startswith("memory://"):
            return Path(":memory:")
        path = Path(url.removeprefix("sqlite:///"))
        return path if own else path.with_name(f"{path.stem}-{name}{path.suffix or '.db'}")

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


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


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
