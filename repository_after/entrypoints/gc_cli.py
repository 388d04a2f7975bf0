"""`sagabank gc`: drop processed-ID records and saga histories older than the retention horizon.

What goes (older than `SAGABANK_RETENTION_DAYS`, default 30):
- operation records of the account service, except tombstones (`nothing_to_compensate`,
  `voided`), which fence out late requests forever. Applied operations stay answerable: their
  ledger entries are kept, and a duplicate, compensation or void rebuilds the original answer
  from them. Counts purged are kept as running totals, so the audit's figures do not move.
- terminal sagas (completed, compensated, rejected, resolved) with their events; parked and
  running sagas are never purged.
The horizon is refused at start-up if shorter than the orchestrator's retry horizon.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from repository_after.bootstrap import build_account_store, build_saga_log
from repository_after.config import get_settings

console = Console()


async def collect(database_url: str, *, before: str) -> tuple[int, int]:
    store = build_account_store(database_url)
    log = build_saga_log(database_url)
    try:
        records = await store.transaction(lambda tx: tx.purge_records(before=before))
        sagas = await log.purge_settled(before=before)
    finally:
        await store.close()
        await log.close()
    return records, sagas


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
    cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
    before = cutoff.isoformat(timespec="microseconds")
    records, sagas = asyncio.run(collect(settings.database_url, before=before))
    console.print(
        f"purged {records} operation record(s) and {sagas} settled saga(s) older than {before}"
    )
