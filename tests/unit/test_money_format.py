"""One money format for people: `format_minor` (Python) and its dashboard twin `formatMinor` (JS).

Amounts travel as integer minor units; wherever they are printed for a person they read
12,345.67. The JS twin is run with node on the same values, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from repository_after.domain.money import format_minor

DASHBOARD_JS = (
    Path(__file__).resolve().parents[2] / "repository_after/entrypoints/static/dashboard.js"
)
CASES = [
    (0, "0.00"),
    (5, "0.05"),
    (250, "2.50"),
    (100_000, "1,000.00"),
    (1_234_567, "12,345.67"),
    (-1_234_567, "-12,345.67"),
    (-7, "-0.07"),
    (10**15, "10,000,000,000,000.00"),
]


@pytest.mark.parametrize(("amount", "text"), CASES)
def test_format_minor(amount: int, text: str) -> None:
    assert format_minor(amount) == text


def test_dashboard_formats_money_like_format_minor() -> None:
    node = shutil.which("node")
    if node is None:
        # A skip locally; under CI the guard in tests/conftest.py makes it a failure.
        pytest.skip("node is not installed")
    source = DASHBOARD_JS.read_text()
    match = re.search(r"^function formatMinor\(.*?^\}$", source, re.S | re.M)
    assert match, "dashboard.js has no formatMinor"
    amounts = [amount for amount, _ in CASES]
    call = f"console.log(JSON.stringify({json.dumps(amounts)}.map(formatMinor)));"
    script = f"{match.group(0)}\n{call}"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [format_minor(a) for a in amounts]
