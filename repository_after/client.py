"""The client demo: `python repository_after/client.py` (the same program as `sagabank demo`).

Runs 100 transfers as sagas against an account service (its own, started on a free loopback port,
unless `--accounts-url` is given) and shows that total money is conserved.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import typer

from repository_after.entrypoints.demo import demo


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(demo)
    app()


if __name__ == "__main__":
    main()
