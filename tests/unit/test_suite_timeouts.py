"""The suite cannot hang: every test has a time limit (pytest-timeout, set in pyproject.toml).

A test that waits forever (a lost event, a child that never answers, a socket nobody writes to)
must end as a failure naming the test, not stall the run until CI kills it without a word. The
limit is the `timeout` ini option; `timeout_method = "signal"` makes SIGALRM raise in the main
thread, so the hung test fails (sync or asyncio: pytest-asyncio runs the loop on the main thread)
and the run goes on with the next test. These tests prove both halves: the option is set for the
suite, and a hung test under the project's own pytest configuration fails with a Timeout while
the test after it still runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

HANGING = """
import asyncio
import threading


def test_sync_wait_that_never_ends():
    threading.Event().wait()  # nobody sets it


async def test_async_wait_that_never_ends():
    await asyncio.Event().wait()  # nobody sets it


def test_the_run_goes_on_after_them():
    assert True
"""


def test_the_suite_runs_every_test_under_a_signal_timeout(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed"
    limit = pytestconfig.getini("timeout")  # "" when unset
    assert limit, "no default per-test timeout is set"
    assert float(limit) > 0
    assert pytestconfig.getini("timeout_method") == "signal"


def test_a_hung_test_fails_with_a_timeout_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    hanging = pytester.makepyfile(test_hangs=HANGING)
    # The project's own ini options (asyncio mode, strict markers, warnings as errors, the
    # timeout method); only the limit is shortened, so the test does not wait the default out.
    # A subprocess: SIGALRM belongs to this very test's own time limit.
    args = ["-c", str(PYPROJECT), "--rootdir", str(pytester.path), "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*args, "--timeout", "2", hanging, timeout=120)
    result.assert_outcomes(failed=2, passed=1)
    # Each failure is pytest-timeout's (its error line; the summary's width varies, so not it).
    text = result.stdout.str()
    raised = re.findall(r"^E\s+Failed: Timeout \(>2\.0s\) from pytest-timeout", text, re.M)
    assert len(raised) == 2, text
    result.stdout.fnmatch_lines(
        [
            "FAILED test_hangs.py::test_sync_wait_that_never_ends*",
            "FAILED test_hangs.py::test_async_wait_that_never_ends*",
        ]
    )
