"""`sagabank chaos`: run the seeded fault run and print its report; exit 1 on any violation."""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from sagabank_tools.chaos.report import render
from sagabank_tools.chaos.runner import ChaosConfig, run
from sagabank_tools.chaos.schedule import parse_families

#: The database servers a run may share (`--database-url`); SQLite files when none is given.
SERVER_SCHEMES = ("postgresql://", "postgres://", "mysql://", "mariadb://")
#: Those choreography runs on (no messaging schema on MariaDB: docs/choreography.md).
CHOREOGRAPHY_SCHEMES = ("postgresql://", "postgres://")


class RunMode(StrEnum):
    ORCHESTRATION = "orchestration"
    CHOREOGRAPHY = "choreography"


class Saga(StrEnum):
    TRANSFER = "transfer"
    ORDER = "order"
    CLASSES = "classes"


def chaos(
    seed: Annotated[int, typer.Option(help="seed of the fault schedule and the plan")] = 1,
    saga: Annotated[Saga, typer.Option(help="the saga type the load runs")] = Saga.TRANSFER,
    sagas: Annotated[
        int,
        typer.Option(
            "--transfers",
            "--orders",
            "--assignments",
            min=1,
            max=1_000_000,
            help="sagas in the seeded plan",
        ),
    ] = 500,
    faults: Annotated[
        str | None,
        typer.Option(help="comma-separated fault families (default: every one of the saga)"),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="sagas in flight at once")] = 16,
    mode: Annotated[
        RunMode,
        typer.Option(help="choreography: the saga over RabbitMQ through broker faults"),
    ] = RunMode.ORCHESTRATION,
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="an empty PostgreSQL or MariaDB (mysql://) database for both services"
            " (choreography: PostgreSQL, every store of the service) (default: SQLite)"
        ),
    ] = None,
) -> None:
    """Sagas through injected faults and SIGKILLs on loopback; audit and match the books."""
    if mode is RunMode.CHOREOGRAPHY:
        _choreography(seed, saga, sagas, faults, concurrency, json_output, database_url)
        return
    try:
        families = None if faults is None else parse_families(faults, saga.value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from exc
    if database_url is not None and not database_url.startswith(SERVER_SCHEMES):
        raise typer.BadParameter(
            "expected postgresql://… or mysql://…", param_hint="--database-url"
        )
    config = ChaosConfig(
        seed=seed,
        sagas=sagas,
        saga=saga.value,
        families=families,
        concurrency=concurrency,
        database_url=database_url,
    )
    report = asyncio.run(run(config)).report
    if json_output:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        render(report, Console())
    if not report.ok:
        if json_output:
            sys.stderr.write(f"chaos run FAILED; replay with: {report.replay_command()}\n")
        raise typer.Exit(1)


def _choreography(
    seed: int,
    saga: Saga,
    sagas: int,
    faults: str | None,
    concurrency: int,
    json_output: bool,
    database_url: str | None,
) -> None:
    """`--mode choreography`: any saga on SQLite (or one PostgreSQL database) through the broker
    families."""
    from sagabank_tools.chaos import choreo_runner
    from sagabank_tools.chaos.choreo_schedule import SAGA_FAMILIES, parse_choreography_families

    if saga.value not in SAGA_FAMILIES:
        raise typer.BadParameter(f"no choreography run of {saga.value}", param_hint="--saga")
    if database_url is not None and not database_url.startswith(CHOREOGRAPHY_SCHEMES):
        raise typer.BadParameter(
            "choreography runs on SQLite or PostgreSQL (postgresql://…)",
            param_hint="--database-url",
        )
    try:
        families = None if faults is None else parse_choreography_families(faults, saga.value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from exc
    config = choreo_runner.ChoreoConfig(
        seed=seed,
        sagas=sagas,
        saga=saga.value,
        families=families,
        concurrency=concurrency,
        database_url=database_url,
    )
    try:
        report = asyncio.run(choreo_runner.run(config))
    except RuntimeError as exc:
        sys.stderr.write(f"chaos: {exc}\n")
        raise typer.Exit(2) from None
    if json_output:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        render(report, Console())
    if not report.ok:
        if json_output:
            sys.stderr.write(f"chaos run FAILED; replay with: {report.replay_command()}\n")
        raise typer.Exit(1)
