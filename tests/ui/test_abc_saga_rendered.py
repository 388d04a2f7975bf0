"""The seed system's saga on the dashboard, in a real browser: the four processes of
`sagabank demo --saga abc` (A, B, C and an orchestrator registering `abc` by
`SAGABANK_EXTRA_SAGAS`, `abc_demo.started`) on loopback, the row "C refuses" run over HTTP as the
demo runs it, then the orchestrator's `/ui` opened: the saga is listed under its type with its
status `compensated`, and its page shows the steps a, b, c (c rejected, b and a compensated),
every attempt in the order it happened (a, b, c's refusal, then b's undo, then a's), and the log
lines of its transitions. Nothing on the dashboard is specific to `abc`: the generic saga views
draw it from its definition."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from repository_after.entrypoints import abc_demo
from repository_after.services.abc_matrix import find_row
from repository_after.services.switched import Fault

pytestmark = pytest.mark.ui


@pytest.fixture
def c_refused(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The cluster's orchestrator URL and the demo's result of the row "C refuses". Set up
    before the browser (Playwright's sync API holds this thread's event loop), and so stopped
    after the page closes."""
    databases = abc_demo.service_databases([], tmp_path)
    with abc_demo.started(databases, tmp_path) as cluster:
        row = find_row("C", Fault.REFUSE, None)
        [result] = asyncio.run(abc_demo.run_rows(cluster, [row]))
        yield cluster.orchestrator, result


def test_a_saga_compensated_after_c_refused_shows_its_status_steps_and_logs(
    c_refused: tuple[str, dict[str, Any]], page: Page, screenshot: Callable[[str], Path]
) -> None:
    url, result = c_refused
    assert result["ok"], result  # the demo saw the row's calls before the browser looks
    saga_id = result["saga_id"]

    page.goto(f"{url}/ui")
    row = page.locator(f'#sagas tr[data-id="{saga_id}"]')
    expect(row.locator("td.type")).to_have_text("abc")
    expect(row.locator(".state")).to_have_text("compensated")
    counts = page.locator('#counts [data-type="abc"] button[data-state="compensated"]')
    expect(counts).to_have_text("compensated 1")
    screenshot("abc-1-list")

    row.locator("a").click()
    expect(page).to_have_url(re.compile(f"/ui/sagas/abc/{saga_id}$"))
    expect(page.locator("#d-status")).to_have_text("compensated")
    expect(page.locator("#d-version")).to_have_text("abc v1")
    steps = page.locator("#timeline > li")
    expect(steps).to_have_count(3)
    for i, (name, state) in enumerate(
        [("a", "compensated"), ("b", "compensated"), ("c", "rejected")]
    ):
        expect(steps.nth(i)).to_have_attribute("data-step", name)
        expect(steps.nth(i)).to_have_attribute("data-state", state)
    # Every attempt in the order it happened: c failed, then b compensated, then a.
    attempts = page.locator("#attempts tbody tr")
    expect(attempts).to_have_count(5)
    happened = [
        ("a", "do", "action", "succeeded"),
        ("b", "do", "action", "succeeded"),
        ("c", "do", "action", "rejected"),
        ("b", "undo", "compensation", "succeeded"),
        ("a", "undo", "compensation", "succeeded"),
    ]
    for i, cells in enumerate(happened):
        expect(attempts.nth(i).locator("td").nth(0)).to_have_text(cells[0])
        expect(attempts.nth(i).locator("td").nth(1)).to_have_text(cells[1])
        expect(attempts.nth(i).locator("td").nth(2)).to_have_text(cells[2])
        expect(attempts.nth(i).locator("td").nth(4)).to_have_text(cells[3])
    logs = page.locator("#logs")
    expect(logs).to_contain_text(f"saga abc {saga_id}: attempt a/undo -> succeeded")
    text = logs.inner_text()
    lines = ["attempt c/do -> rejected", "attempt b/undo -> succeeded", "attempt a/undo"]
    at = [text.index(f"saga abc {saga_id}: {line}") for line in lines]
    assert at == sorted(at), text  # the log lines in the order the saga went
    screenshot("abc-2-compensated-after-c")
