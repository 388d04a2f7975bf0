"""`repository_after/client.py` and `evaluation.py` run by a Python without the project's
dependencies (`-I -S`: no site-packages, no PYTHONPATH) say in one line how to get them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "args"),
    [("repository_after/client.py", ["--transfers", "1"]), ("evaluation.py", ["--impl", "after"])],
)
def test_a_bare_interpreter_is_told_to_run_make_install(script: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "make install" in lines[0]
    assert f".venv/bin/python {script}" in lines[0]
