"""Which half (or part) of sagabank a process serves: `SAGABANK_ROLE`, `sagabank serve --role`."""

from __future__ import annotations

from enum import StrEnum


class ProcessRole(StrEnum):
    """What a process serves. `all`: the orchestrator and the participants; `accounts`: the
        participants (the account service, with the inventory, orders, pupils and classes services
        under `/inventory`, `/orders`, `/pupils` and `/classes`); `orchestrator`: the sagas alone;
        `inventory` / `orders` / `pupils` / `classes`: that participant alone, at `/`; `abc-a` /
    `abc-b` / `abc-c`: the A → B → C example's service A, B or C alone, at `/` (never hosted beside
    the account service: `sagabank demo --saga abc` runs them). (Not
        `domain.saga.StepRole`, which says what one call does for its step.)"""

    ALL = "all"
    ACCOUNTS = "accounts"
    ORCHESTRATOR = "orchestrator"
    INVENTORY = "inventory"
    ORDERS = "orders"
    PUPILS = "pupils"
    CLASSES = "classes"
    ABC_A = "abc-a"
    ABC_B = "abc-b"
    ABC_C = "abc-c"

    @property
    def runs_sagas(self) -> bool:
        return self in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR)

    @property
    def hosts_participants(self) -> bool:
        """Serves the account service, and the other hosted participants beside it."""
        return self in (ProcessRole.ALL, ProcessRole.ACCOUNTS)

    @property
    def serves_one_participant(self) -> bool:
        """Serves that one participant alone, at `/` (`inventory`, `orders`, `pupils`,
        `classes`, `abc-a`, `abc-b`, `abc-c`)."""
        return self in (
            ProcessRole.INVENTORY,
            ProcessRole.ORDERS,
            ProcessRole.PUPILS,
            ProcessRole.CLASSES,
            ProcessRole.ABC_A,
            ProcessRole.ABC_B,
            ProcessRole.ABC_C,
        )
