"""Where the books live: the database URL of this process and of each hosted participant.

A settings group of its own because every backend is chosen by these URLs alone
(`bootstrap.build_account_store`, `build_saga_log`), and a new participant adds one URL here and
nothing elsewhere. `Settings` (`config/__init__.py`) inherits it beside the other groups.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, field_validator

from repository_after.domain.classes import CLASSES, PUPILS
from repository_after.domain.order import INVENTORY, ORDERS

#: The URL schemes a database setting may have (`memory://` for tests).
DATABASE_SCHEMES = (
    "sqlite:///",
    "memory://",
    "postgresql://",
    "postgres://",
    "mysql://",
    "mariadb://",
)


class StorageSettings(BaseModel):
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

    @field_validator(
        "inventory_database_url",
        "orders_database_url",
        "pupils_database_url",
        "classes_database_url",
        mode="before",
    )
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def _check_database_urls(self) -> None:
        for url in (
            self.database_url,
            self.inventory_database_url,
            self.orders_database_url,
            self.pupils_database_url,
            self.classes_database_url,
        ):
            if url is not None and not url.startswith(DATABASE_SCHEMES):
                raise ValueError(
                    "database_url (and inventory_database_url, orders_database_url, "
                    "pupils_database_url, classes_database_url) must be "
                    "sqlite:///<path>, postgresql://..., mysql://... or memory://"
                )

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
