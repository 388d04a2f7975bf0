"""README's "HTTP API" walk-through is true: its curl commands, run in order on a fresh
`sagabank serve` (role `all`, the default fault rate, no tokens), answer what it documents.

A documented output is a `# {...}` comment: on its own line right after a command, or at the end
of the command's last line. `…` in it stands for what varies from run to run (ids, times);
everything else must be exactly what the server sends. The walk-through must leave the books
consistent: its last command is `/audit` and it answers ok. `serve` also prints where the
dashboard and the API docs are.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import Launcher

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class Step:
    command: str
    documented: list[str] = field(default_factory=list)


def _block() -> list[str]:
    """The first ```bash block of the "## HTTP API" section."""
    section = README.read_text().split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0].splitlines()


def _split_comment(line: str) -> tuple[str, str | None]:
    """`curl ... # {...}` -> the command and its documented output (outside quotes only)."""
    match = re.search(r"\s+# (\{.*)$", line)
    if match is None or line[: match.start()].count("'") % 2:
        return line, None
    return line[: match.start()], match.group(1)


def parse() -> tuple[list[str], list[Step]]:
    """The block's shell set-up lines (`B=`, `AUTH=`) and its curl commands in order."""
    setup: list[str] = []
    steps: list[Step] = []
    lines = iter(_block())
    for line in lines:
        if line.startswith("curl "):
            parts = [line]
            # A command goes on while a line ends with `\` or a single quote is still open.
            while parts[-1].endswith("\\") or "\n".join(parts).count("'") % 2:
                parts.append(next(lines))
            command, documented = _split_comment(parts[-1])
            steps.append(Step("\n".join([*parts[:-1], command])))
            if documented is not None:
                steps[-1].documented.append(documented)
        elif line.startswith("# {"):
            assert steps, line
            steps[-1].documented.append(line[2:])
        elif line.strip() and not line.startswith("#"):
            setup.append(line.split("  #", 1)[0].strip())
    return setup, steps


def _pattern(documented: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in documented.split("…")), re.DOTALL)


def test_the_block_is_parsed_into_its_commands() -> None:
    setup, steps = parse()
    assert [line.split("=", 1)[0] for line in setup] == ["B", "AUTH"]
    assert len(steps) >= 10
    assert all("$B/" in step.command for step in steps)
    assert sum(len(step.documented) for step in steps) >= 5


def test_the_walkthrough_answers_what_it_documents(launch: Launcher, tmp_path: Path) -> None:
    service = launch(role="all", name="readme", credit_failure_rate=0.3)
    setup, steps = parse()
    prelude = "\n".join(f"B={service.url}" if s.startswith("B=") else s for s in setup)
    answers = []
    for step in steps:
        run = subprocess.run(
            ["bash", "-euc", f"{prelude}\n{step.command}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        answers.append(run.stdout)
        for documented in step.documented:
            assert _pattern(documented).fullmatch(run.stdout.strip()), (step.command, run.stdout)
    assert steps[-1].command.strip() == "curl -s $B/audit"
    audit = json.loads(answers[-1])
    assert (audit["ok"], audit["violations"], audit["in_flight"]) == (True, [], 0), audit
    printed = (tmp_path / "readme.log").read_text()
    assert f"{service.url}/ui\n" in printed
    assert f"{service.url}/docs\n" in printed
