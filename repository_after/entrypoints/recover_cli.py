"""`sagabank recover`: drive every unsettled saga of the log to a terminal (or parked) state, then
exit (docs/operations.md, "After a crash").

It waits, bounded by `--wait`, for sagas under another worker's live lease (`--take-over` takes
them at once), and never for a saga of a version this server does not register: that one is left
to a server that has it (`service_layer/resumption.py`), listed, and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Annotated, NamedTuple

import typer
from rich.console import Console

from repository_after.config import get_settings
from repository_after.entrypoints import sagas_cli
from repository_after.service_layer.orchestrator import Orchestrator

console = Console()


class Recovered(NamedTuple):
    """What `sagabank recover` did: final status counts, the ids still leased by another worker
    when it gave up waiting, and those this server cannot drive (id -> type and version)."""

    counts: dict[str, int]
    leased: list[str]
    elsewhere: dict[str, str]


async def recover_all(o: Orchestrator, *, wait: float, take_over: bool) -> Recovered:
    """Drive what can be taken; while sagas remain under another worker's live lease, wait
    (bounded by `wait` seconds) for those leases to expire and try again. A saga of a version
    this server lacks is left to a server that has it (`resumption`), never waited for."""
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + wait
    said: tuple[int, int] | None = None
    while True:
        counts.update(await o.recover(take_over=take_over))
        left = await o.log.unsettled_ids()
        elsewhere = await o.unresumable(left)
        leased = [saga_id for saga_id in left if saga_id not in elsewhere]
        remaining = deadline - time.monotonic()
        if not leased or remaining <= 0:
            return Recovered(dict(counts), leased, elsewhere)
        # A progress line when the count changes, else every 5 s: the operator sees it move.
        if said is None or said[0] != len(leased) or said[1] - remaining >= 5:
            said = (len(leased), int(remaining))
            console.print(
                f"waiting for the leases of {len(leased)} unsettled saga(s) to expire "
                f"(another worker holds them; giving up in {remaining:.0f}s)"
            )
        # Polling the log: a lease's end is only visible there (the database's clock).
        await asyncio.sleep(min(1.0, remaining))


def recover(
    wait: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="seconds to wait for other workers' leases to expire "
            "(default: SAGABANK_LEASE_TTL + 5)",
        ),
    ] = None,
    take_over: Annotated[
        bool,
        typer.Option(
            help="take the sagas at once despite live leases: only when their worker is surely "
            "dead (fencing still stops it if it is not)"
        ),
    ] = False,
) -> None:
    """Drive every unsettled saga in the log to a terminal (or parked) state, then exit.

    Exit 1 if sagas remain that another worker's lease kept from this command, or that this
    server cannot drive (their version is not registered here: left for a server that has it)."""
    bound = get_settings().lease_ttl + 5.0 if wait is None else wait
    done = sagas_cli.run_refusing_changed_definitions(
        sagas_cli.with_orchestrator(lambda o: recover_all(o, wait=bound, take_over=take_over))
    )
    console.print(f"recovered: {done.counts or 'nothing to do'}")
    if done.leased:
        console.print(
            f"[red]{len(done.leased)} saga(s) still unsettled after {bound:g}s, leased by another "
            f"worker:[/red] {', '.join(done.leased)}\nIf that worker is running, it drives them; "
            "if it is surely dead, run `sagabank recover --take-over`.",
            soft_wrap=True,
        )
    if done.elsewhere:
        console.print(
            f"[red]{len(done.elsewhere)} saga(s) of a version this server does not register "
            "(or registers with other steps), left for a server that has it:[/red] "
            + ", ".join(f"{i} ({what})" for i, what in done.elsewhere.items())
            + "\nRun `sagabank recover` on such a server; without one, they park after "
            "SAGABANK_UNKNOWN_VERSION_GRACE without progress.",
            soft_wrap=True,
        )
    if done.leased or done.elsewhere:
        raise typer.Exit(1)
