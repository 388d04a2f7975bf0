"""The client demo: `python repository_after/client.py` (the same program as `sagabank demo`).

Runs 100 transfers as sagas against an account service (its own, started on a free loopback port,
unless `--accounts-url` is given) and shows that total money is conserved
(`entrypoints/transfer_demo.py`); with `--saga order`, 100 orders over the account, inventory
and orders services it starts (`entrypoints/order_demo.py`); with `--saga classes`, 60 group
assignments over the pupils and classes services (`entrypoints/classes_demo.py`).

Run by a Python without the project's dependencies (a system `python3`), it prints one line
saying how to get them and exits 2, rather than a traceback; so does a bad setting, and a saga
log that holds unfinished sagas this code defines with another shape (`DefinitionsChanged`).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import typer

    from repository_after.config import ConfigurationError
    from repository_after.entrypoints.demo import demo
    from repository_after.service_layer.saga_types import DefinitionsChanged
except ModuleNotFoundError as missing:
    if (missing.name or "").partition(".")[0] in ("repository_after", "repository_before"):
        raise  # the project itself is broken: that traceback is the useful answer
    sys.stderr.write(
        f"client.py: this Python ({sys.executable}) lacks {missing.name!r}: run `make install`, "
        "then `.venv/bin/python repository_after/client.py`\n"
    )
    raise SystemExit(2) from None


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(demo)
    try:
        app()
    except ConfigurationError as exc:  # a bad setting: its message, not a traceback
        sys.stderr.write(f"refusing to start: {exc}\n")
        raise SystemExit(2) from None
    except DefinitionsChanged as exc:  # the saga log holds sagas of another shape: the same
        sys.stderr.write(f"{exc.one_line()}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
