"""The `sagabank` command: serve, demo, audit, recover, and the saga admin commands.

sagabank serve [--host H] [--port P] [--role all|accounts|orchestrator] [--insecure]
               [--mode orchestration|choreography]
sagabank demo  [--saga transfer|order] [--transfers N] [--fault-mode before|after|mixed] ...
sagabank audit [--json]              check the books and reconcile them with the saga log;
                                     exit 1 on any violation (or orphaned money)
sagabank recover [--wait S] [--take-over]   drive every unsettled saga to a terminal state;
                                     exit 1 if some stay under another worker's live lease, or
                                     are of a version this server lacks (entrypoints/recover_cli.py)
sagabank sagas list|show|retry|resolve
sagabank gc [--participant NAME]     drop records older than the retention horizon (the account
                                     service's, the sagas', the participants'; gc_cli.py)
sagabank chaos | bench               developer tools from `sagabank_tools`, found through the
                                     `sagabank.commands` entry points (entrypoints/tool_commands.py)
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
from typing import Annotated, NoReturn

import typer
import uvicorn
from rich.console import Console

from repository_after.bootstrap import check_services
from repository_after.config import (
    ConfigurationError,
    ProcessRole,
    SagaMode,
    Settings,
    get_settings,
    load_settings,
)
from repository_after.entrypoints import demo, gc_cli, recover_cli, sagas_cli
from repository_after.entrypoints.logs import configure_logging
from repository_after.entrypoints.runtime_tuning import tune_gc, tune_switch_interval
from repository_after.entrypoints.tool_commands import ToolCommandsGroup
from repository_after.service_layer.saga_types import DefinitionsChanged

app = typer.Typer(
    help="sagabank: money transfers as idempotent, crash-safe sagas.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=ToolCommandsGroup,
)
app.add_typer(sagas_cli.app, name="sagas")
app.command(name="demo")(demo.demo)
app.command(name="gc")(gc_cli.gc)
console = Console()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_changed_definitions(settings: Settings) -> None:
    """Exit 2 with the reason if the saga log holds unfinished sagas this server would resume
    with another shape (`bootstrap.check_saga_versions`; the app's start-up checks it too, but
    a failed lifespan is a traceback, not a sentence)."""
    from repository_after.bootstrap import check_saga_versions

    try:
        asyncio.run(check_saga_versions(settings))
    except DefinitionsChanged as exc:
        console.print(str(exc), style="red", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (SAGABANK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (SAGABANK_PORT)")] = None,
    role: Annotated[
        ProcessRole | None, typer.Option(help="which half to run (SAGABANK_ROLE)")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="SAGABANK_DATABASE_URL")] = None,
    mode: Annotated[
        SagaMode | None,
        typer.Option(
            help="orchestrated over HTTP, or choreographed over the broker (SAGABANK_MODE)"
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(help="allow a non-loopback address without the admin and service tokens"),
    ] = False,
) -> None:
    """Serve the account service and the transfers API (one process by default)."""
    overrides = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "role": role,
            "database_url": database_url,
            "mode": mode,
        }.items()
        if v is not None
    }
    # Bad settings, or a saga step whose service has no URL: one clear message, before
    # anything is logged or opened, and no traceback (nor any value of a setting: a token).
    try:
        settings = load_settings(**overrides)
        orchestrates = settings.mode is SagaMode.ORCHESTRATION  # choreography calls no URL
        if settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR) and orchestrates:
            check_services(settings, settings.saga_definitions())
        if not orchestrates:
            from repository_after.choreography.wiring import check_choreography, reach_broker

            check_choreography(settings)
            asyncio.run(reach_broker(settings))
    except ConfigurationError as exc:
        _refuse_to_start(exc)
    missing = [
        name
        for name, token in (
            ("SAGABANK_ADMIN_TOKEN", settings.admin_token),
            ("SAGABANK_SERVICE_TOKEN", settings.service_token),
        )
        if token is None
    ]
    # Off loopback, whoever reaches the port could open accounts (admin) or move money
    # (service): both guards must be on, unless the operator says otherwise.
    if not _is_loopback(settings.host) and missing and not insecure:
        console.print(
            f"[red]refusing to serve on {settings.host} without {' and '.join(missing)}[/red] "
            "(anyone could open accounts or move money); set both tokens or pass --insecure",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    _refuse_changed_definitions(settings)
    configure_logging(settings)
    from repository_after.entrypoints.app import create_app

    served = create_app(settings)
    tune_gc(settings.gc_threshold)
    tune_switch_interval(settings.switch_interval_us)
    # Where to point a browser: a wildcard bind is reached on loopback; IPv6 needs brackets.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{settings.port}"
    urls = [("API docs", f"{base}/docs")]
    if settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        urls.insert(0, ("dashboard", f"{base}/ui"))
    for label, url in urls:
        if settings.log_json:  # every line of a JSON-logging process is a JSON log line
            logging.getLogger(__name__).info("%s: %s", label, url)
        else:
            console.print(f"{label + ':':<11} {url}", soft_wrap=True, markup=False)
    uvicorn.run(
        served,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


@app.command()
def audit(
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check the account books and reconcile them with the saga log (every cent in flight has a
    saga that owns it; each settled transfer matches the ledger); exit 1 on any violation."""
    from repository_after.bootstrap import build_account_store, build_saga_log
    from repository_after.service_layer.audit import audit as run_audit
    from repository_after.service_layer.reconcile import reconcile

    settings = get_settings()

    async def go() -> dict[str, object]:
        store = build_account_store(settings.database_url)
        try:
            if settings.role is ProcessRole.ACCOUNTS:  # this database holds no saga log
                return (await store.read(run_audit)).as_dict()
            log = build_saga_log(settings.database_url, next_to=store)
            try:
                return (await reconcile(store, log)).as_dict()
            finally:
                await log.close()
        finally:
            await store.close()

    report = asyncio.run(go())
    if json_output:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        console.print(
            f"accounts: {report['accounts']}  opened: {report['total_opened']}  "
            f"balances: {report['total_balance']}  in flight: {report['in_flight']}"
        )
        if report["reconciled"]:
            console.print(
                f"owned by unsettled sagas: {report['owned_in_flight']}  "
                f"orphaned: {report['orphaned_in_flight']}  "
                f"settled sagas checked: {report['sagas_checked']}"
            )
        else:
            console.print("not reconciled with a saga log (role accounts)")
        for violation in report["violations"]:  # type: ignore[attr-defined]
            console.print(f"[red]VIOLATION[/red] {violation}")
        console.print("[green]audit ok[/green]" if report["ok"] else "[red]audit FAILED[/red]")
    if not report["ok"]:
        raise typer.Exit(1)


app.command(name="recover")(recover_cli.recover)  # after audit: the order `--help` lists


def _say_refused(exc: ConfigurationError) -> None:
    console.print("[red]refusing to start:[/red]", end=" ")
    console.print(str(exc), soft_wrap=True, markup=False, highlight=False)


def _refuse_to_start(exc: ConfigurationError) -> NoReturn:
    _say_refused(exc)
    raise typer.Exit(2)


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:  # another command's settings (`get_settings`)
        _say_refused(exc)
        sys.exit(2)
    except DefinitionsChanged as exc:  # `demo` over a log of changed sagas: a line, not a trace
        console.print(exc.one_line(), style="red", soft_wrap=True, markup=False, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
