"""Under CI a skipped test fails: the guard in tests/conftest.py, run on a small suite.

A skip says "this did not run". Locally that is useful (no PostgreSQL on a laptop); in CI it would
let a run without a service, a browser or node count as green. The guard turns every kind of
skip into a failure that carries the skip's reason, when the `CI` environment variable is set:
in a test's body, in a fixture, by a `skip` mark, and a whole module skipped at import. An
expected failure (`xfail`) is not a skip and stays what it is. Without `CI` nothing changes.
The small suite below runs in-process with the real hooks loaded (`-p tests.conftest`).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest


@pytest.fixture
def service():
    pytest.skip("no service in a fixture")


def test_ran():
    assert True


def test_skips_in_its_body():
    pytest.skip("no node in the body")


def test_skips_in_a_fixture(service):
    assert False, "never reached"


@pytest.mark.skip(reason="marked to skip")
def test_marked():
    assert False, "never reached"


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False
"""

SKIPPED_MODULE = """
import pytest

pytest.skip("a module without its dependency", allow_module_level=True)


def test_never_collected():
    assert False
"""


def run(pytester: pytest.Pytester, **modules: str) -> pytest.RunResult:
    # The inner run's own ini: warnings are errors there too, and pytest-asyncio (loaded by
    # tests.conftest's async fixtures) is told its loop scope, as pyproject.toml tells it.
    pytester.makeini(
        "[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(**modules)
    return pytester.runpytest("-p", "tests.conftest", "-p", "no:cacheprovider")


def test_every_kind_of_skip_fails_under_ci_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "1")
    result = run(pytester, test_suite=SUITE)
    # The fixture's skip and the mark's are raised in setup, so they fail as errors.
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1, skipped=0)
    for reason in ("no node in the body", "no service in a fixture", "marked to skip"):
        result.stdout.fnmatch_lines([f"*{reason}*"])
    result.stdout.fnmatch_lines(["*CI is set, so this skip is a failure*"])


def test_a_module_skipped_at_import_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = run(pytester, test_module=SKIPPED_MODULE)
    result.assert_outcomes(errors=1, skipped=0)
    result.stdout.fnmatch_lines(["*a module without its dependency*"])
    assert result.ret != pytest.ExitCode.OK


def test_without_ci_a_skip_stays_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = run(pytester, test_suite=SUITE, test_module=SKIPPED_MODULE)
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
