"""`sagabank gc`: run the retention use case (`service_layer/retention.py`) on this database.

The account store and the saga log share `SAGABANK_DATABASE_URL` (their own tables); both come
from bootstrap and are closed whatever happens. The horizon is refused (exit 2) if shorter than
the orchestrator's retry horizon.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from repository_after.bootstrap import build_account_store, build_saga_log
from repository_after.config import get_settings
from repository_after.service_layer import retention

console = Console()


async def collect(database_url: str, *, before: str) -> retention.Collected:
    store = build_account_store(database_url)
    log = build_saga_log(database_url)
    try:
        return await retention.collect(store, log, before=before)
    finally:
        await store.close()
        await log.close()


def gc(
    retention_days: Annotated[
        float | None, typer.Option(help="override SAGABANK_RETENTION_DAYS for this run")
    ] = None,
) -> None:
    """Remove records older than the retention horizon; the audit is unchanged."""
    settings = get_settings()
    if retention_days is not None:
        try:
            settings = settings.model_validate(
                {**settings.model_dump(), "retention_days": retention_days}
            )
        except ValidationError as exc:
            console.print(f"[red]{exc.errors()[0]['msg']}[/red]")
            raise typer.Exit(2) from exc
    before = retention.horizon(datetime.now(UTC), retention_days=settings.retention_days)
    done = asyncio.run(collect(settings.database_url, before=before))
    console.print(
        f"purged {done.records} operation record(s) and {done.sagas} settled saga(s) "
        f"older than {before}"
    )
