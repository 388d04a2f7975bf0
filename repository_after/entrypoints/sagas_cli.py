"""`sagabank sagas list|show|retry|resolve`: the operator's view of the saga log.

Run them against the orchestrator's database (`SAGABANK_DATABASE_URL`). `list` and `show` only
read: they open the saga log alone (no participant, no service settings) and work even when the
log holds sagas whose definition this server defines with another shape, showing each saga's
stored definition (name, version, shape hash) and marking those that differ. `list [--type T]
[--status S]` shows what `GET /sagas` and `GET /sagas/{type}` answer (`saga_listing`): a type
column, the parameters, and the counts by type and status, with each saga's definition.
`retry` and `resolve` go through the same `Orchestrator` methods as the HTTP admin endpoints and
refuse such a log, exit 2, as `sagabank serve` does (`DefinitionsChanged`); a saga of a version
this server does not register is refused alone (exit 1: retry it on a server that has it).
`retry` calls the services the saga's steps name. Retry a parked saga only while no other
process drives it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from repository_after.bootstrap import build_saga_log, orchestrator_session, saga_types
from repository_after.config import get_settings
from repository_after.domain.saga import InvalidTransition
from repository_after.service_layer import saga_listing
from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.saga_ports import SagaLog
from repository_after.service_layer.saga_types import (
    VIEW_FIELDS,
    DefinitionsChanged,
    SagaTypes,
    UnknownSagaType,
)
from repository_after.service_layer.saga_views import history_rows, log_view

T = TypeVar("T")
app = typer.Typer(help="Inspect and operate sagas.", no_args_is_help=True)
console = Console()


async def with_orchestrator(fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    async with orchestrator_session(get_settings()) as orchestrator:
        return await fn(orchestrator)


def run_refusing_changed_definitions(session: Coroutine[Any, Any, T]) -> T:
    """Run `session`; a log with sagas this server would resume with another shape than they
    started with (`DefinitionsChanged`) is one message and exit 2, as `sagabank serve` says it."""
    try:
        return asyncio.run(session)
    except DefinitionsChanged as exc:
        console.print(str(exc), style="red", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(2) from None


def _run(fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    try:
        return run_refusing_changed_definitions(with_orchestrator(fn))
    except SagaNotFound as exc:
        console.print(f"[red]no saga {exc.args[0]!r}[/red]")
        raise typer.Exit(1) from exc
    except InvalidTransition as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    except UnknownSagaType as exc:  # a version this server does not register: it starts beside
        console.print(exc.args[0], style="red", markup=False, highlight=False)  # such sagas
        raise typer.Exit(1) from None


def _read(fn: Callable[[SagaLog, SagaTypes], Awaitable[T]]) -> T:
    """Run a read-only command over the saga log alone, with this server's saga types."""

    async def go() -> T:
        log = build_saga_log(get_settings().database_url)
        try:
            return await fn(log, saga_types())
        finally:
            await log.close()

    return asyncio.run(go())


def _definition(view: dict[str, Any], *, sep: str = " ") -> Text:
    """`transfer v1 <shape hash>` (`sep` between the type and the rest), and below it, in red,
    how this server's definition differs."""
    text = Text(f"{view['name']}{sep}v{view['version']} {view['shape_hash']}")
    if view["changed"]:
        text.append(f"\n{view['changed']}", style="red")
    return text


@app.command("list")
def list_sagas(
    saga_type: Annotated[
        str | None, typer.Option("--type", help="only sagas of this type (e.g. order)")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", "--state", help="only sagas in this status")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many sagas")] = 50,
) -> None:
    """Recent sagas (of every type, or of `--type`), newest first, and how many sagas each
    type has in each status; each saga's definition (name, version, shape hash), marked when
    this server defines it with another shape. A type or a status no saga can have: exit 2."""

    async def go(log: SagaLog, types: SagaTypes) -> dict[str, Any]:
        return await saga_listing.list_sagas(
            log=log,
            types=types,
            saga_type=saga_type,
            status=status,
            limit=limit,
            with_definitions=True,
        )

    try:
        listed = _read(go)
    except (UnknownSagaType, saga_listing.UnknownStatus) as exc:
        console.print(exc.args[0], style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    # The type, and below it the definition the saga started under (version, shape hash).
    table = Table("type", "transaction id", "status", "parameters", "created", "updated")
    for view in listed["sagas"]:
        params = {k: v for k, v in view.items() if k not in VIEW_FIELDS}
        table.add_row(
            _definition(listed["definitions"][view["transaction_id"]], sep="\n"),
            view["transaction_id"],
            view["status"],
            Text(json.dumps(params)),
            view["created_at"],
            view["updated_at"],
        )
    console.print(table)
    by_type = listed["counts"] if saga_type is None else {saga_type: listed["counts"]}
    counts = Table("type", "status", "sagas")
    for name, by_status in by_type.items():
        for state, n in by_status.items():
            if n:
                counts.add_row(name, state, str(n))
    console.print(counts if counts.rows else "no sagas")


@app.command()
def show(
    saga_id: Annotated[str, typer.Argument(help="the saga's transaction id")],
) -> None:
    """One saga's parameters, status, definition and every event of its history."""

    async def go(log: SagaLog, types: SagaTypes) -> None:
        stored = await log.load(saga_id)
        if stored is None:
            console.print(f"[red]no saga {saga_id!r}[/red]")
            raise typer.Exit(1)
        view = log_view(stored=stored, types=types)
        console.print(
            f"[bold]{view['saga']} {saga_id}[/bold]: {view['status']} {json.dumps(stored.params)}",
            markup=True,
            highlight=False,
        )
        console.print(Text("definition: ").append_text(_definition(view["definition"])))
        if view["definition"]["changed"]:
            console.print(
                "shown as the log holds it, not replayed under this server's shape; while it is "
                "unfinished, serve, recover and sagas retry|resolve refuse the log until that "
                "version is registered as it was",
                style="red",
                soft_wrap=True,
            )
        if view["parked_reason"]:
            console.print(f"parked: {view['parked_reason']}")
        table = Table("at", "event", "step", "operation", "attempt", "outcome", "code", "detail")
        for row in history_rows(stored):
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)

    _read(go)


@app.command()
def retry(
    saga_id: Annotated[str, typer.Argument(help="the parked saga's transaction id")],
    note: Annotated[str, typer.Option(help="recorded in the saga's history")] = (
        "retried from the CLI"
    ),
) -> None:
    """Resume a parked saga where it stopped."""
    state = _run(lambda o: o.retry(saga_id, note=note))
    console.print(f"{saga_id}: {state.status}")


@app.command()
def resolve(
    saga_id: Annotated[str, typer.Argument(help="the parked saga's transaction id")],
    note: Annotated[str, typer.Option(help="what was fixed by hand; recorded in the history")] = (
        "resolved from the CLI"
    ),
) -> None:
    """Close a parked saga after fixing it by hand (recorded with the note)."""
    state = _run(lambda o: o.resolve(saga_id, note=note))
    console.print(f"{saga_id}: {state.status}")
