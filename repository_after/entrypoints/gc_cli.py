"""`sagabank gc`: run the retention use case (`service_layer/retention.py`) on this deployment's
databases.

Without `--participant`: the account store and the saga log of `SAGABANK_DATABASE_URL` (their
own tables), then the hosted participants' databases (`Settings.participant_database`: the
inventory's, the orders, pupils and classes services', as a process of role `all` or
`accounts` opens them), each cutoff held back by the sagas that log still has unsettled. With
`--participant NAME`: that participant's database alone, as `sagabank serve --role NAME` opens
it with the same settings: how the operator of a participant run as its own process purges it.
A participant database that does not exist yet (or holds no records) is skipped, never
created. Every store is closed whatever happens. The horizon is refused (exit 2) if shorter
than the orchestrator's retry horizon, before anything is opened.

Choreography's inboxes (`messaging.retention.purge_inboxes`) are purged with the same cutoff in
every store that has one (the account database's, each participant's; a PostgreSQL database
that several of them share is purged once), each consumer's cutoff recorded so an older copy is
refused from then on (docs/choreography.md, "Retention of the inbox").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.bootstrap import build_account_store, build_saga_log
from repository_after.choreography.stores import SharedSqliteStore
from repository_after.config import HOSTED_PARTICIPANTS, Settings, get_settings
from repository_after.domain.sagas import DEFINITIONS
from repository_after.entrypoints.participants import existing_participant
from repository_after.messaging.retention import purge_inboxes
from repository_after.participant_kit.storage import ParticipantStore
from repository_after.service_layer import retention
from repository_after.service_layer.ports import AccountStore, StorageError

console = Console()


def _say_inboxes(where: str, purged: dict[str, int], before: str) -> None:
    for consumer, count in sorted(purged.items()):
        say(f"{where}: purged {count} inbox row(s) of {consumer} older than {before}")


async def _purge_inboxes(
    where: str, store: ParticipantStore, settings: Settings, before: str, seen: set[str]
) -> None:
    identity = getattr(store, "identity", None)  # a PostgreSQL database, by its conninfo
    if identity is not None:
        if identity in seen:
            return
        seen.add(identity)
    purged = await purge_inboxes(
        store, before=before, now=datetime.now(UTC), min_horizon=settings.retry_horizon()
    )
    _say_inboxes(where, purged, before)


async def _collect_accounts(
    settings: Settings, *, before: str, seen: set[str]
) -> tuple[retention.Collected, dict[str, dict[str, str]]]:
    """The account store's and the saga log's purge (and the account database's inbox), and the
    log's unsettled sagas."""
    store = build_account_store(settings.database_url)
    log = build_saga_log(settings.database_url)
    try:
        collected = await retention.collect(store, log, before=before)
        face = _account_face(store)
        if face is not None:
            await _purge_inboxes("accounts", face, settings, before, seen)
        return collected, await log.oldest_unsettled()
    finally:
        await store.close()
        await log.close()


async def _collect_participant(
    settings: Settings,
    name: str,
    *,
    before: str,
    oldest_unsettled: dict[str, dict[str, str]],
    seen: set[str],
) -> retention.ParticipantCollected | None:
    service = await asyncio.to_thread(existing_participant, settings, name)
    if service is None:
        return None
    try:
        collected = await retention.collect_participant(
            service, before=before, oldest_unsettled=oldest_unsettled, definitions=DEFINITIONS
        )
        await _purge_inboxes(name, service.store, settings, before, seen)
        return collected
    finally:
        await service.store.close()


def _account_face(store: AccountStore) -> ParticipantStore | None:
    """The account database's kit-shaped face, where its inbox lives (None in memory)."""
    if isinstance(store, SqliteAccountStore):
        return SharedSqliteStore(store.database)
    if type(store).__name__ == "PostgresAccountStore":  # psycopg is an extra
        from repository_after.adapters.postgres_accounts import PostgresAccountStore
        from repository_after.choreography.pg_store import SharedPostgresStore

        assert isinstance(store, PostgresAccountStore)
        return SharedPostgresStore(store.database)
    return None


def say(line: str) -> None:
    """One line of the report, never wrapped (it is read by scripts and cron mail)."""
    console.print(line, soft_wrap=True, markup=False, highlight=False)


async def _run(settings: Settings, *, before: str, only: Sequence[str]) -> None:
    oldest: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    if not only:
        done, oldest = await _collect_accounts(settings, before=before, seen=seen)
        say(
            f"purged {done.records} operation record(s) and {done.sagas} settled saga(s) "
            f"older than {before}"
        )
    for name in only or tuple(HOSTED_PARTICIPANTS):
        purged = await _collect_participant(
            settings, name, before=before, oldest_unsettled=oldest, seen=seen
        )
        if purged is None:
            say(f"{name}: no database with its records yet, nothing to purge")
        elif purged.held_back(before):
            say(
                f"{name}: purged {purged.records} record(s) older than {purged.before} "
                "(held back by a saga not yet settled)"
            )
        else:
            say(f"{name}: purged {purged.records} record(s) older than {before}")


def gc(
    retention_days: Annotated[
        float | None, typer.Option(help="override SAGABANK_RETENTION_DAYS for this run")
    ] = None,
    participant: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="purge only this participant's database (inventory, orders, pupils or "
            "classes; repeatable), as `sagabank serve --role NAME` opens it with the same "
            "settings",
        ),
    ] = None,
) -> None:
    """Remove records older than the retention horizon; the audits are unchanged."""
    settings = get_settings()
    only = list(participant or ())
    unknown = sorted(set(only) - set(HOSTED_PARTICIPANTS))
    if unknown:
        console.print(
            f"[red]no participant {', '.join(map(repr, unknown))}: "
            f"{', '.join(HOSTED_PARTICIPANTS)}[/red]"
        )
        raise typer.Exit(2)
    if retention_days is not None:
        try:
            settings = settings.model_validate(
                {**settings.model_dump(), "retention_days": retention_days}
            )
        except ValidationError as exc:
            console.print(f"[red]{exc.errors()[0]['msg']}[/red]")
            raise typer.Exit(2) from exc
    before = retention.horizon(datetime.now(UTC), retention_days=settings.retention_days)
    try:
        asyncio.run(_run(settings, before=before, only=list(dict.fromkeys(only))))
    except StorageError as exc:
        console.print(
            f"storage unavailable: {exc}",
            style="red",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from exc
