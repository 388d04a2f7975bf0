"""Evaluate the naive `repository_before` against `repository_after` (sagabank), side by side.

Run it (it is the last step of `make test`):

    .venv/bin/python evaluation.py                  # both implementations
    .venv/bin/python evaluation.py --impl after     # one of them
    .venv/bin/python evaluation.py --transfers 200 --seed 42 --fault-rate 0.3 --concurrency 1 \
        --report evaluation/report.json

For each implementation it
1. starts two of its account services on free loopback ports: one without faults (the contract)
   and one whose every `/credit` is applied and then answered 500 (lost responses), and runs the
   one black-box HTTP suite, `tests/blackbox`, against them in a pytest subprocess
   (`SAGABANK_BLACKBOX_URL`, `SAGABANK_BLACKBOX_FAULT_URL`), counting results from its JUnit XML;
2. runs its demo client (`repository_<impl>/client.py --json`, which starts its own service) with
   the same seeded transfer plan under credit faults `before` (the credit failed) and `after`
   (the credit happened, the answer was lost), and reads how much total money changed.

It prints a table, writes `evaluation/report.json` (plus the JUnit XML and logs beside it), and
exits 0 only if `repository_after` passed every black-box test and conserved money in every mode.
The naive implementation failing tests and losing or creating money is the expected result and
is reported, not treated as an error. Exit 1: `repository_after` failed; exit 2: the harness
itself failed (a server that would not start, a step over its time budget). Everything runs on
127.0.0.1, and the whole run is bounded by `--budget` seconds (default 170).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    from rich.console import Console
    from rich.table import Table

    from repository_after.domain.money import format_minor
    from tests.blackbox.launcher import IMPLEMENTATIONS, LiveServer
except ModuleNotFoundError as missing:
    if (missing.name or "").partition(".")[0] in ("repository_after", "repository_before", "tests"):
        raise  # the project itself is broken: that traceback is the useful answer
    # A system Python without the dependencies: one line, not a traceback (exit 2: no harness).
    sys.stderr.write(
        f"evaluation.py: this Python ({sys.executable}) lacks {missing.name!r}: "
        "run `make install`, then `.venv/bin/python evaluation.py`\n"
    )
    raise SystemExit(2) from None

MODES = ("before", "after")
console = Console()


class HarnessError(Exception):
    """The evaluation could not measure something (as opposed to an implementation failing)."""


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    def left(self, cap: float) -> float:
        remaining = self.seconds - (time.monotonic() - self.start)
        if remaining <= 1:
            raise HarnessError(f"time budget of {self.seconds:.0f}s exhausted")
        return min(cap, remaining)


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any SAGABANK_* setting that could skew a run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGABANK_")}
    env.update(extra)
    return env


def display(path: Path) -> str:
    """A path relative to the project when it is inside it, for humans and the report."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_junit(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise HarnessError(f"pytest wrote no JUnit report at {path}")
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failed: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        outcome = (
            "errors"
            if "error" in tags
            else "failed"
            if "failure" in tags
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
        counts[outcome] += 1
        if outcome in ("failed", "errors"):
            module = case.get("classname", "").rsplit(".", 1)[-1]
            failed.append(f"{module}::{case.get('name')}")
    return {**counts, "total": sum(counts.values()), "failed_tests": failed}


def run_blackbox(impl: str, out: Path, budget: Budget) -> dict[str, Any]:
    xml = out / f"blackbox-{impl}.xml"
    log = out / f"blackbox-{impl}.log"
    xml.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"sagabank-eval-{impl}-") as tmp:
        workdir = Path(tmp)
        contract = LiveServer(impl, workdir, fault_rate=0.0, name="contract")
        faulty = LiveServer(impl, workdir, fault_rate=1.0, fault_mode="after", name="faults")
        try:
            contract.start(timeout=budget.left(30))
            faulty.start(timeout=budget.left(30))
            env = clean_env(
                SAGABANK_BLACKBOX_URL=contract.url, SAGABANK_BLACKBOX_FAULT_URL=faulty.url
            )
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "tests/blackbox",
                "-m",
                "blackbox",
                "-p",
                "no:cacheprovider",
                "-q",
                "--tb=short",
                f"--junitxml={xml}",
            ]
            with open(log, "wb") as log_file:
                proc = subprocess.run(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    timeout=budget.left(120),
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"black-box suite against {impl} timed out") from exc
        except RuntimeError as exc:
            raise HarnessError(str(exc)) from exc
        finally:
            contract.stop()
            faulty.stop()
    return {**parse_junit(xml), "exit_code": proc.returncode, "log": display(log)}


def run_demo(impl: str, mode: str, args: argparse.Namespace, budget: Budget) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"evaluation-{impl}-{mode}-") as data_dir:
        return _run_demo(impl, mode, args, budget, Path(data_dir))


def _run_demo(
    impl: str, mode: str, args: argparse.Namespace, budget: Budget, data_dir: Path
) -> dict[str, Any]:
    # sagabank's demo keeps its books and saga log in a durable folder (./data by default) and
    # resumes what a killed run left there: each evaluation run gets fresh ones, so its figures
    # repeat exactly and never add up across runs.
    fresh = ["--data-dir", str(data_dir)] if impl == "after" else []
    cmd = [
        sys.executable,
        str(ROOT / f"repository_{impl}" / "client.py"),
        "--transfers",
        str(args.transfers),
        "--fault-mode",
        mode,
        "--fault-rate",
        str(args.fault_rate),
        "--seed",
        str(args.seed),
        "--concurrency",
        str(args.concurrency),
        "--json",
        *fresh,
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=budget.left(90),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"demo of {impl} with faults {mode} timed out") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise HarnessError(f"demo of {impl} ({mode}) printed no JSON summary:\n{tail}")
    summary = json.loads(lines[-1])
    keep = ("delta", "conserved", "outcomes", "total_before", "total_after", "audit_ok")
    return {**{k: summary[k] for k in keep if k in summary}, "exit_code": proc.returncode}


def verdict(impl: str, result: dict[str, Any]) -> bool:
    """After: every test passed and money conserved everywhere. Before: that it shows the bug."""
    tests, demos = result["tests"], result["demo"].values()
    if impl == "after":
        return (
            tests["exit_code"] == 0
            and tests["total"] > 0
            and tests["passed"] == tests["total"]
            and all(
                d["conserved"] and d.get("audit_ok", True) and d["exit_code"] == 0 for d in demos
            )
        )
    return tests["failed"] + tests["errors"] > 0 and any(not d["conserved"] for d in demos)


def money(delta: int, conserved: bool) -> str:
    colour = "green" if conserved else "red"
    sign = "+" if delta > 0 else ""
    return f"[{colour}]{sign}{format_minor(delta)}[/{colour}]"


def print_report(report: dict[str, Any]) -> None:
    s = report["settings"]
    results = report["implementations"]
    table = Table(
        title=f"black-box tests, and money delta over {s['transfers']} transfers per credit "
        f"fault mode (rate {s['fault_rate']:.0%}, seed {s['seed']})"
    )
    table.add_column("implementation")
    table.add_column("passed", justify="right")
    table.add_column("failed", justify="right")
    for mode in MODES:
        table.add_column(f"money delta, faults {mode}", justify="right")
    table.add_column("verdict")
    for impl, r in results.items():
        t = r["tests"]
        bad = t["failed"] + t["errors"]
        if impl == "after":
            label = "[green]ok[/green]" if r["ok"] else "[red]FAILED[/red]"
        else:
            label = "bug shown (expected)" if r["ok"] else "[yellow]shows no bug[/yellow]"
        table.add_row(
            impl,
            f"{t['passed']}/{t['total']}",
            f"[red]{bad}[/red]" if bad else "0",
            *(money(r["demo"][m]["delta"], r["demo"][m]["conserved"]) for m in MODES),
            label,
        )
    console.print(table)

    outcomes = Table(title="transfer outcomes")
    outcomes.add_column("implementation")
    outcomes.add_column("faults")
    outcomes.add_column("outcomes")
    for impl, r in results.items():
        for mode in MODES:
            counts = r["demo"][mode]["outcomes"]
            outcomes.add_row(impl, mode, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    console.print(outcomes)

    for impl, r in results.items():
        if r["tests"]["failed_tests"]:
            console.print(f"[bold]{impl}[/bold] failed {len(r['tests']['failed_tests'])} tests:")
            for name in r["tests"]["failed_tests"]:
                console.print(f"  {name}", soft_wrap=True, highlight=False)
    console.print(f"report: {report['report_path']} ({report['runtime_seconds']:.1f}s)")


def main() -> int:
    parser = argparse.ArgumentParser(description="evaluate repository_before vs repository_after")
    parser.add_argument("--impl", choices=[*IMPLEMENTATIONS, "both"], default="both")
    parser.add_argument("--transfers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="transfers in flight in the demos; 1 makes the seeded fault draws reproducible",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "evaluation" / "report.json")
    parser.add_argument("--budget", type=float, default=170.0, help="seconds for the whole run")
    args = parser.parse_args()
    impls = list(IMPLEMENTATIONS) if args.impl == "both" else [args.impl]
    report_path = args.report if args.report.is_absolute() else Path.cwd() / args.report
    out = report_path.parent
    out.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget)

    results: dict[str, Any] = {}
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report_path": display(report_path),
        "settings": {
            "transfers": args.transfers,
            "seed": args.seed,
            "fault_rate": args.fault_rate,
            "concurrency": args.concurrency,
            "modes": list(MODES),
        },
        "implementations": results,
    }
    try:
        for impl in impls:
            console.print(f"[bold]repository_{impl}[/bold]: black-box suite ...")
            result: dict[str, Any] = {"tests": run_blackbox(impl, out, budget), "demo": {}}
            for mode in MODES:
                console.print(f"[bold]repository_{impl}[/bold]: demo, credit faults {mode} ...")
                result["demo"][mode] = run_demo(impl, mode, args, budget)
            result["ok"] = verdict(impl, result)
            results[impl] = result
    except HarnessError as exc:
        report.update(runtime_seconds=round(time.monotonic() - budget.start, 2), ok=False)
        report["error"] = str(exc)
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"[red]evaluation could not run:[/red] {exc}")
        return 2

    ok = "after" not in results or results["after"]["ok"]
    report.update(
        runtime_seconds=round(time.monotonic() - budget.start, 2),
        after_passes=results["after"]["ok"] if "after" in results else None,
        before_shows_the_problem=results["before"]["ok"] if "before" in results else None,
        ok=ok,
    )
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    if not ok:
        after = results["after"]["tests"]
        console.print(f"[red]repository_after failed the evaluation[/red]; see {after['log']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
