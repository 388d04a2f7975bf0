"""Which half (or part) of sagabank a process serves: `SAGABANK_ROLE`, `sagabank serve --role`."""

from __future__ import annotations

from enum import StrEnum


class ProcessRole(StrEnum):
    """What a process serves. `all`: the orchestrator and the participants; `accounts`: the
    participants (the account service, with the inventory and orders services under `/inventory`
    and `/orders`); `orchestrator`: the sagas alone; `inventory` / `orders`: that participant
    alone, at `/`. (Not `domain.saga.StepRole`, which says what one call does for its step.)"""

    ALL = "all"
    ACCOUNTS = "accounts"
    ORCHESTRATOR = "orchestrator"
    INVENTORY = "inventory"
    ORDERS = "orders"

    @property
    def runs_sagas(self) -> bool:
        return self in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR)

    @property
    def hosts_participants(self) -> bool:
        """Serves the account service, and the inventory and orders services beside it."""
        return self in (ProcessRole.ALL, ProcessRole.ACCOUNTS)
