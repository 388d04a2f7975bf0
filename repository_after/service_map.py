"""The services sagas call, as configuration: `SAGABANK_SERVICES` entries, and the map an
orchestrator resolves from them (`resolve_services`): each service's URL, whether its calls may
leave as one `POST /batch`, and the bearer token sent to it alone.

Where each credential goes (the trust boundary this module keeps):
- `SAGABANK_SERVICE_TOKEN` is the account service's credential: it opens `/debit` and `/credit`.
  It goes to the account service (unless that service's entry has a token of its own) and to
  the participants that service's process hosts (`HOSTED_PARTICIPANTS`, not listed in
  `SAGABANK_SERVICES`: the same process checks the same credential), and to nothing else.
- A service listed with its own URL gets its own `token` alone, or none: never the account
  service's, whoever runs it. With a service token set, such a service must say which
  (`token`, or `"token": null` for one that takes none); `services_without_token` names those
  that do not, and the orchestrator refuses to start on them (`bootstrap.check_services`).
- No token ever reaches a `/health` probe, a log, an error message or a repr (`SecretStr`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from repository_after.domain.classes import CLASSES, PUPILS
from repository_after.domain.order import INVENTORY, ORDERS
from repository_after.domain.transfer import ACCOUNTS

#: The participants of the built-in sagas besides the account service: where a process that
#: hosts them mounts each (`ProcessRole.hosts_participants`), which is also where an
#: orchestrator looks for them by default (the account service's URL + this path).
HOSTED_PARTICIPANTS = {
    INVENTORY: "/inventory",
    ORDERS: "/orders",
    PUPILS: "/pupils",
    CLASSES: "/classes",
}

#: A service's name in `SAGABANK_SERVICES` (and in a saga step): as safe to log as an id.
SERVICE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def check_service_url(url: str) -> str:
    """`url` if it names an http(s) service by host alone, without its trailing slash; else a
    ValueError that does not repeat it (a URL with a password in it must not reach a log)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError("must not carry a user or password (the token goes in `token`)")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("must not carry a query or a fragment")
    return url.rstrip("/")


class ServiceEntry(BaseModel):
    """One service of `SAGABANK_SERVICES`: where it is, whether it takes `POST /batch`, and the
    token sent to it alone (`null` or `""`: it takes none, said on purpose)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    batching: bool = True
    token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_service_url(value)

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def says_its_token(self) -> bool:
        """The entry has a `token` key, even `null`: its credential (or none) is deliberate."""
        return "token" in self.model_fields_set


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """A service the orchestrator calls, resolved: its URL (no trailing slash), whether its calls
    may leave as one `POST /batch`, and the token sent to it alone (None: no `Authorization`)."""

    url: str
    batching: bool
    token: SecretStr | None


def resolve_services(
    listed: Mapping[str, ServiceEntry],
    *,
    accounts_url: str,
    service_token: SecretStr | None,
    batching: bool,
) -> dict[str, ServiceConfig]:
    """`listed`, plus the account service as "accounts" at `accounts_url` unless listed, plus
    each of `HOSTED_PARTICIPANTS` not listed, where the account service hosts it (its URL +
    the path). Tokens as the module says; `batching` False turns it off for every service."""
    services = {
        name: ServiceConfig(url=entry.url, batching=entry.batching and batching, token=entry.token)
        for name, entry in listed.items()
        if name != ACCOUNTS
    }
    accounts = listed.get(ACCOUNTS)
    services[ACCOUNTS] = ServiceConfig(
        url=accounts.url if accounts else accounts_url,
        batching=(accounts.batching if accounts else True) and batching,
        token=(accounts.token if accounts else None) or service_token,
    )
    host = services[ACCOUNTS]
    for name, path in HOSTED_PARTICIPANTS.items():
        if name not in listed:  # in the account service's process: its very credential
            services[name] = ServiceConfig(url=host.url + path, batching=batching, token=host.token)
    return services


def services_without_token(
    listed: Mapping[str, ServiceEntry], *, service_token: SecretStr | None
) -> list[str]:
    """The services listed with their own URL that get no token without saying so, while a
    service token is set: each was, before, handed the account service's credential."""
    if service_token is None:
        return []
    return sorted(
        name for name, entry in listed.items() if name != ACCOUNTS and not entry.says_its_token
    )
