"""What this process serves and whom it calls: its saga types, where it listens, its role, the
services its sagas call, its tokens and trusted hosts; and the interpreter tuning of `serve`.

One group because these settings answer together "what is this process, how is it reached and
how does it reach others" (`resolved_accounts_url`, `resolved_trusted_hosts`). The runtime
tuning (`RuntimeSettings`) is a group of its own only to keep the settings' order (it follows
the retries); it too is read by `sagabank serve` alone.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from repository_after.domain.saga import SagaDefinition
from repository_after.domain.sagas import OPT_IN, definitions
from repository_after.domain.transfer import ACCOUNTS
from repository_after.process_role import ProcessRole
from repository_after.service_map import (
    SERVICE_NAME_PATTERN,
    ServiceEntry,
    check_service_url,
)

#: `SAGABANK_GC_THRESHOLD`'s default (`entrypoints/runtime_tuning.py`): 20,000 and 100,000
#: measured alike, both far above CPython's 700.
DEFAULT_GC_THRESHOLD = 20_000
#: `SAGABANK_SWITCH_INTERVAL_US`'s default (`entrypoints/runtime_tuning.py`): CPython's is 5,000.
DEFAULT_SWITCH_INTERVAL_US = 100


class ServerSettings(BaseModel):
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

    @field_validator("admin_token", "service_token", "read_token", "accounts_url", mode="before")
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

    def extra_saga_names(self) -> tuple[str, ...]:
        """The opt-in saga types of `extra_sagas`, in the order given, each once."""
        return tuple(dict.fromkeys(_names(self.extra_sagas)))

    def saga_definitions(self) -> dict[str, SagaDefinition]:
        """The saga types this server runs: the built-in ones and `extra_sagas`."""
        return definitions(self.extra_saga_names())

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


class RuntimeSettings(BaseModel):
    # `sagabank serve`: CPython's gen0 collection threshold, after freezing what start-up made
    # (`entrypoints/runtime_tuning.py`); 0 keeps CPython's defaults.
    gc_threshold: int = Field(default=DEFAULT_GC_THRESHOLD, ge=0, le=10_000_000)
    # `sagabank serve`: the GIL's switch interval in µs, so that the database's writer thread
    # gets the GIL soon after its fsync (`entrypoints/runtime_tuning.py`); 0 keeps CPython's.
    switch_interval_us: int = Field(default=DEFAULT_SWITCH_INTERVAL_US, ge=0, le=1_000_000)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]
